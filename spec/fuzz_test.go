package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzLoad loads arbitrary bytes as a LinuxKit YAML file and, when that
// succeeds, generates the bundles with arbitrary bytes as every image's
// org.mobyproject.config label. Nothing may panic or hang, every error is
// an *Error placed inside the file, and every accepted configuration
// gives bundle directories that stay where they belong.
//
// The seeds are the hostile corpus and LinuxKit's examples and tests, so
// `go test` runs them as a normal test; `make fuzz` fuzzes for longer.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, dir := range []string{"testdata/hostile", "testdata/linuxkit", "testdata/metadata"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
				seeds = append(seeds, p)
			}
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	labels := []string{"", `{"capabilities": ["CAP_CHOWN"], "binds": ["/a:/b"]}`, "uid: getty\nrlimits: [nofile,1,2]\n",
		"devices: [{path: /dev/x, type: c, major: 1, minor: 1, mode: \"0999\"}]", "<<: {cwd: /x}\nenv: &e [A=1]\ncommand: *e\n"}
	for i, p := range seeds {
		dt, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(dt, []byte(labels[i%len(labels)]))
	}
	f.Fuzz(func(t *testing.T, data, label []byte) {
		// A slow input crashes the fuzzing worker, which saves it.
		watchdog := time.AfterFunc(fuzzInputTime, func() { panic(fmt.Sprintf("Load and Bundles took more than %v", fuzzInputTime)) })
		defer watchdog.Stop()
		cfg, err := Load(Source{Filename: "f.yml", Data: data})
		if err != nil {
			checkFuzzError(t, data, err)
			return
		}
		ics := map[string]ImageConfig{}
		for _, ref := range cfg.Images() {
			ics[ref] = ImageConfig{Labels: map[string]string{LabelConfig: string(label)}}
		}
		bundles, err := Bundles(cfg, ics)
		if err != nil {
			checkFuzzError(t, data, err)
			return
		}
		for _, b := range bundles {
			if filepath.Dir(b.Dir) != filepath.Join("containers", b.Section) || strings.ContainsAny(filepath.Base(b.Dir), "/\x00\n") {
				t.Errorf("bundle %q of %s is not one directory below containers/%s", b.Dir, b.Name, b.Section)
			}
		}
		for _, fe := range cfg.Files {
			if p := filePath(fe.Path); p == "" || strings.HasPrefix(p, "../") || p == ".." {
				t.Errorf("files path %q accepted", fe.Path)
			}
		}
		if _, err := Metadata(cfg, "yaml"); err != nil {
			t.Errorf("metadata: %v", err)
		}
	})
}

// yamlBreakRE matches one line break as yaml.v3 counts it.
var yamlBreakRE = regexp.MustCompile("\r\n|[\r\n\u0085\u2028\u2029]")

// fuzzInputTime bounds the time of one fuzz input.
const fuzzInputTime = 10 * time.Second

// checkFuzzError checks that err is positioned errors inside data.
func checkFuzzError(t *testing.T, data []byte, err error) {
	var list Errors
	var one *Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = Errors{one}
	default:
		t.Fatalf("error without a position: %v", err)
	}
	// Lines as yaml.v3 counts them: it breaks lines at CR LF (one break),
	// CR, LF, NEL, LS and PS ("\r0" is two lines), and a byte order mark
	// at the start is not a column.
	lines := yamlBreakRE.Split(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))), -1)
	inFile := func(e *Error) bool {
		return e.Line >= 1 && e.Line <= len(lines) && e.Col >= 1 && e.Col <= utf8.RuneCountInString(lines[e.Line-1])+1
	}
	for _, e := range list {
		if e.File != "f.yml" {
			t.Errorf("error in file %q: %v", e.File, e)
		}
		if !inFile(e) {
			t.Errorf("error outside the file (%d lines as yaml.v3 counts them): %v", len(lines), e)
		}
	}
}
