package frontend_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/frontend"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/moby/buildkit/frontend/subrequests/outline"
)

// buildxCall runs docker buildx build --call call over the YAML file (in
// frontend/testdata unless it has a directory) with the frontend of
// LKBUILD_FRONTEND, and returns stdout and stderr apart.
func buildxCall(t *testing.T, env testenv.Env, file, call string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	if !strings.Contains(file, "/") {
		file = "frontend/testdata/" + file
	}
	all := append([]string{"buildx", "build", "--builder", "lkbuild", "--progress", "plain",
		"--build-arg", "BUILDKIT_SYNTAX=" + env.Helper, "-f", file, "--call", call}, args...)
	cmd := exec.Command("docker", append(all, "frontend/testdata")...)
	cmd.Dir = env.Root
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// TestBuildxOutline: --call outline lists the build-args of the table
// with the NAME default of the -f file.
func TestBuildxOutline(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out, errb, err := buildxCall(t, env, "examples/minimal.yml", "outline,format=json", "--target", "iso-efi")
	if err != nil {
		t.Fatalf("--call outline: %v\n%s%s", err, out, errb)
	}
	var o outline.Outline
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("outline JSON: %v\n%s", err, out)
	}
	var names []string
	for _, a := range o.Args {
		names = append(names, a.Name)
		if a.Name == frontend.ArgName && a.Value != "minimal" {
			t.Errorf("NAME default %q, want minimal", a.Value)
		}
	}
	if !slices.Equal(names, frontend.BuildArgNames()) || o.Name != "iso-efi" {
		t.Errorf("outline %+v", o)
	}
	out, errb, err = buildxCall(t, env, "examples/minimal.yml", "outline")
	if err != nil || !bytes.Contains(out, []byte("SOURCE_DATE_EPOCH")) || !bytes.Contains(out, []byte("BUILD ARG")) {
		t.Errorf("--call outline text: %v\n%s%s", err, out, errb)
	}
}

// TestBuildxCheck: --call check gives a warning of each rule at its line,
// buildx prints the YAML lines, and exits 1; a clean YAML gives none.
func TestBuildxCheck(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out, errb, err := buildxCall(t, env, "check.yml", "check,format=json")
	if err == nil {
		t.Errorf("--call check with warnings exited 0")
	}
	var res lint.LintResults
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check JSON: %v\n%s%s", err, out, errb)
	}
	var got []string
	for _, w := range res.Warnings {
		line := int32(0)
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
			if src := res.Sources[w.Location.SourceIndex]; src.Filename != "frontend/testdata/check.yml" && src.Filename != "check.yml" {
				t.Errorf("%s: source %q", w.RuleName, src.Filename)
			}
		}
		got = append(got, w.RuleName+":"+itoa(line))
	}
	want := []string{"MovingImageTag:16", "TrustIgnored:28", "DuplicateCapability:22", "HostNetworkAllCapabilities:17",
		"MissingCommand:11", "UnresolvedImage:13"}
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q\nwant %q", got, want)
	}

	// The text buildx prints: each rule, the message and the YAML lines.
	out, errb, _ = buildxCall(t, env, "check.yml", "check")
	text := string(out) + string(errb)
	for _, s := range []string{"6 warnings have been found", "WARNING: MissingCommand", "onboot nocmd has no command",
		"mode: \"4755\"", "capabilities: [CAP_NET_ADMIN, CAP_NET_ADMIN]"} {
		if !strings.Contains(text, s) {
			t.Errorf("buildx --call check output lacks %q:\n%s", s, text)
		}
	}

	out, errb, err = buildxCall(t, env, "examples/minimal.yml", "check")
	if err != nil || !bytes.Contains(out, []byte("no warnings found")) {
		t.Errorf("--call check of the example: %v\n%s%s", err, out, errb)
	}
}

// TestBuildxCheckBrokenYAML: the errors of a YAML that does not load are
// check results at their lines, and --call targets still answers.
func TestBuildxCheckBrokenYAML(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out, errb, _ := buildxCall(t, env, "check-bad.yml", "check,format=json")
	var res lint.LintResults
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check JSON: %v\n%s%s", err, out, errb)
	}
	var got []string
	for _, w := range res.Warnings {
		got = append(got, w.RuleName+":"+itoa(w.Location.Ranges[0].Start.Line))
	}
	if !slices.Equal(got, []string{"InvalidYAML:3", "InvalidYAML:7"}) || res.Error != nil {
		t.Errorf("warnings %q (error %+v)", got, res.Error)
	}
	out, errb, err := buildxCall(t, env, "check-bad.yml", "targets")
	if err != nil || !bytes.Contains(out, []byte("kernel+initrd (default)")) {
		t.Errorf("--call targets of a broken YAML: %v\n%s%s", err, out, errb)
	}
}

// TestBuildxSchema: --call lkbuild.schema prints the schema, the one
// committed and the one lkbuild schema prints.
func TestBuildxSchema(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out, errb, err := buildxCall(t, env, "check-bad.yml", "lkbuild.schema")
	if err != nil || !bytes.Equal(out, spec.Schema()) {
		t.Errorf("--call lkbuild.schema: %v\n%s%s", err, out, errb)
	}
}

// TestBuildxVersionInProgress: a build shows the frontend's version as a
// step of its progress.
func TestBuildxVersionInProgress(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	b, err := buildxMinimal(t, env, "--target", "tar", "-o", "type=tar,dest="+t.TempDir()+"/x.tar")
	if err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	if !bytes.Contains(b, []byte("[internal] lkbuild v")) || !bytes.Contains(b, []byte("(commit ")) {
		t.Errorf("no version step in the progress:\n%s", b)
	}
}

func itoa(n int32) string { b, _ := json.Marshal(n); return string(b) }

// TestFileModeSpecialBitsKept: setuid, setgid and sticky bits of files
// entries reach the tree, as in LinuxKit's tar (BuildKit's Mkfile and
// Mkdir would drop them: llbgen copies such entries with a chmod), and the
// directories the entries are written into keep their own mode.
func TestFileModeSpecialBitsKept(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	tarFile := filepath.Join(t.TempDir(), "modes.tar")
	build(t, env, cli.BuildOptions{File: filepath.Join(dir, "modes.yml"), Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile})
	want := map[string]int64{"usr/bin/suid": 0o4755, "tmp/sticky": 0o1777, "usr/bin/sgid-source": 0o2755,
		"usr/bin/sgid-metadata": 0o2640, "usr/bin": 0o755, "tmp": 0o1777}
	owner := map[string][2]int{"usr/bin/suid": {0, 0}, "usr/bin/sgid-metadata": {100, 101}}
	eachTarEntry(t, tarFile, func(h *tar.Header, _ io.Reader) {
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if m, ok := want[name]; ok {
			if h.Mode&0o7777 != m {
				t.Errorf("%s: mode %04o, want %04o", name, h.Mode&0o7777, m)
			}
			if o, ok := owner[name]; ok && (h.Uid != o[0] || h.Gid != o[1]) {
				t.Errorf("%s: owner %d:%d, want %d:%d", name, h.Uid, h.Gid, o[0], o[1])
			}
			delete(want, name)
		}
	})
	if len(want) > 0 {
		t.Errorf("not in the tree: %v", want)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
