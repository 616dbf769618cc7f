// Command record runs `linuxkit build --format tar` over the parity corpus
// against the stand-in images and writes each tree's manifest under
// hack/parity/testdata/trees (see hack/parity/README.md; record.sh builds
// linuxkit and runs this).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lkbuild/lkbuild/hack/parity"
)

var keep bool

func main() {
	linuxkit := flag.String("linuxkit", "", "linuxkit binary")
	commit := flag.String("commit", "", "LinuxKit commit the binary was built from")
	root := flag.String("root", ".", "repository root (the corpus is spec/testdata/linuxkit and hack/parity/testdata/extra)")
	out := flag.String("out", "hack/parity/testdata", "where the manifests go")
	work := flag.String("work", "", "scratch directory (image cache, prepared inputs, tars)")
	run := flag.String("run", "", "only inputs whose key matches this regular expression")
	jobs := flag.Int("j", runtime.NumCPU(), "concurrent linuxkit builds")
	flag.BoolVar(&keep, "keep", false, "keep each input's prepared files and linuxkit's tar under -work")
	flag.Parse()
	if *linuxkit == "" || *commit == "" || *work == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := record(*linuxkit, *commit, *root, *out, *work, *run, *jobs); err != nil {
		log.Fatal(err)
	}
}

func record(linuxkit, commit, root, out, work, run string, jobs int) error {
	start := time.Now()
	inputs, err := parity.Corpus(root)
	if err != nil {
		return err
	}
	imgs, err := parity.StandIns(inputs)
	if err != nil {
		return err
	}
	cache := filepath.Join(work, "cache")
	if err := parity.WriteCache(cache, imgs); err != nil {
		return err
	}
	home := filepath.Join(work, "home") // empty: ~/ sources are missing, as for lkbuild
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	trees := filepath.Join(out, "trees")
	if run == "" {
		// A full recording replaces every manifest: none stays stale.
		if err := os.RemoveAll(trees); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(trees, 0o755); err != nil {
		return err
	}
	var re *regexp.Regexp
	if run != "" {
		re = regexp.MustCompile(run)
	}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed, built int
	contentsFile := filepath.Join(out, "contents.json.gz")
	contents := map[string][]byte{}
	if run != "" {
		if old, err := parity.LoadContents(contentsFile); err == nil {
			contents = old
		}
	}
	var errs []error
	for _, in := range inputs {
		if re != nil && !re.MatchString(in.Key) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(in parity.Input) {
			defer func() { <-sem; wg.Done() }()
			ok, kept, err := recordOne(linuxkit, commit, trees, filepath.Join(work, "inputs", in.Key), cache, home, in)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range kept {
				contents[k] = v
			}
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", in.Key, err))
			case ok:
				built++
			default:
				failed++
			}
		}(in)
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d inputs could not be recorded: %v", len(errs), errs)
	}
	if err := parity.SaveContents(contentsFile, contents); err != nil {
		return err
	}
	info := fmt.Sprintf("linuxkit commit: %s\nlinuxkit flags: build --format tar --cache <stand-ins>\nstand-in images: %d\ninputs: %d built, %d failed in linuxkit\n",
		commit, len(imgs), built, failed)
	if run == "" {
		if err := os.WriteFile(filepath.Join(out, "linuxkit.txt"), []byte(info), 0o644); err != nil {
			return err
		}
	}
	log.Printf("%s(%s)", info, time.Since(start).Round(time.Second))
	return nil
}

// recordOne builds one input with linuxkit and writes its manifest; ok is
// false when linuxkit refused the input (the manifest then holds the error).
func recordOne(linuxkit, commit, trees, dir, cache, home string, in parity.Input) (ok bool, kept map[string][]byte, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return false, nil, err
	}
	p, err := parity.Prepare(in, dir)
	if err != nil {
		return false, nil, err
	}
	tarFile := filepath.Join(dir, "rootfs.tar")
	// In a network namespace of its own linuxkit can reach nothing: every
	// image must come from the cache.
	args := append([]string{"-n", linuxkit, "build", "--format", "tar", "--cache", cache, "--o", tarFile}, p.Files...)
	cmd := exec.Command("unshare", args...)
	cmd.Dir = p.Context
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_HOST=unix:///nonexistent")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	header := []string{"input: " + strings.Join(in.Files, " "), "linuxkit: " + commit + " build --format tar"}
	if err := cmd.Run(); err != nil {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		msg = logPrefix.ReplaceAllString(msg, "")
		header = append(header, "error: "+strings.ReplaceAll(msg, dir, "<dir>"))
		return false, nil, os.WriteFile(filepath.Join(trees, in.Key+".manifest"), (&parity.Manifest{}).Format(header...), 0o644)
	}
	f, err := os.Open(tarFile)
	if err != nil {
		return false, nil, err
	}
	defer f.Close()
	m, err := parity.Read(f, parity.KeepGenerated)
	if err != nil {
		return false, nil, err
	}
	parity.MarkVarying(m)
	if err := os.WriteFile(filepath.Join(trees, in.Key+".manifest"), m.Format(header...), 0o644); err != nil {
		return false, nil, err
	}
	if keep {
		return true, m.Contents, nil
	}
	return true, m.Contents, os.RemoveAll(dir)
}

// logPrefix is the date and time logrus puts before linuxkit's error.
var logPrefix = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (error during command execution: )?`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
