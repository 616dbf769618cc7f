package llbgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// everyKind uses one image per kind of entry; the comments give the
// position each entry's errors must carry.
const everyKind = `kernel:
  image: example.com/k:1 # 2:3
init:
  - example.com/i:1 # 4:5
onboot:
  - name: ob # 6:5
    image: example.com/o:1
onshutdown:
  - name: os # 9:5
    image: example.com/s:1
services:
  - name: svc # 12:5
    image: example.com/v:1
volumes:
  - name: fs # 15:5
    image: example.com/f:1
  - name: oc # 17:5
    image: example.com/c:1
    format: oci
  - name: ocp # 20:5
    image: example.com/p:1
    format: oci
    platforms: [linux/arm64, linux/amd64]
`

var arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}

func buildFor(t *testing.T, yml string, r *fakeResolver, target ocispecs.Platform) ([]Warning, error) {
	t.Helper()
	cfg, err := spec.Parse("p.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	o := options(r)
	o.TargetPlatform = target
	var warnings []Warning
	o.Warn = func(w Warning) { warnings = append(warnings, w) }
	_, err = Build(context.Background(), cfg, o)
	return warnings, err
}

// specErrors returns the spec errors in err, failing the test when err is
// not made of them.
func specErrors(t *testing.T, err error) spec.Errors {
	t.Helper()
	var errs spec.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v, want spec.Errors", err)
	}
	return errs
}

// TestForeignSingleManifestImage: an image that is a single manifest for
// linux/amd64 (BuildKit takes it for any platform) used in a linux/arm64
// build fails the build, for every kind of entry, with the entry's
// position and field, the image and both platforms.
func TestForeignSingleManifestImage(t *testing.T) {
	for _, tc := range []struct {
		ref, field, entry string
		line, col         int
	}{
		{"example.com/k:1", "kernel.image", "", 2, 3},
		{"example.com/i:1", "init[0]", "", 4, 5},
		{"example.com/o:1", "onboot[0].image", "ob", 6, 5},
		{"example.com/s:1", "onshutdown[0].image", "os", 9, 5},
		{"example.com/v:1", "services[0].image", "svc", 12, 5},
		{"example.com/f:1", "volumes[0].image", "fs", 15, 5},
		{"example.com/c:1", "volumes[1].image", "oc", 17, 5},
		{"example.com/p:1", "volumes[2].platforms[0]", "ocp", 20, 5},
	} {
		t.Run(tc.field, func(t *testing.T) {
			r := &fakeResolver{single: map[string]ocispecs.Platform{tc.ref: amd64}}
			_, err := buildFor(t, everyKind, r, arm64)
			errs := specErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(errs), err)
			}
			e := errs[0]
			if e.File != "p.yml" || e.Line != tc.line || e.Col != tc.col || e.Field != tc.field {
				t.Errorf("error at %s:%d:%d %s, want p.yml:%d:%d %s", e.File, e.Line, e.Col, e.Field, tc.line, tc.col, tc.field)
			}
			for _, s := range []string{tc.ref, "is for linux/amd64", "not for linux/arm64", fmt.Sprintf("%q", tc.entry)} {
				if tc.entry == "" && strings.HasPrefix(s, `"`) {
					continue
				}
				if tc.field == "kernel.image" && s == "not for linux/arm64" {
					s = "must be for linux/arm64"
				}
				if !strings.Contains(e.Msg, s) {
					t.Errorf("message %q lacks %q", e.Msg, s)
				}
			}
			// the same images for linux/amd64 are right
			if _, err := buildFor(t, strings.ReplaceAll(everyKind, "linux/arm64, ", ""), r, amd64); err != nil {
				t.Errorf("amd64 build: %v", err)
			}
		})
	}
}

// TestForeignImageEveryUse: an image used by several entries fails each of
// them, in YAML order.
func TestForeignImageEveryUse(t *testing.T) {
	yml := strings.ReplaceAll(strings.ReplaceAll(everyKind, "example.com/o:1", "example.com/v:1"), "example.com/f:1", "example.com/v:1")
	r := &fakeResolver{single: map[string]ocispecs.Platform{"example.com/v:1": amd64}}
	_, err := buildFor(t, yml, r, arm64)
	var got []string
	for _, e := range specErrors(t, err) {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Col, e.Field))
	}
	if want := "6:5 onboot[0].image|12:5 services[0].image|15:5 volumes[0].image"; strings.Join(got, "|") != want {
		t.Errorf("errors at %s, want %s", strings.Join(got, "|"), want)
	}
}

// TestIndexWithoutPlatform: an index without the build's platform fails
// like a foreign single manifest, naming the entry, instead of BuildKit's
// bare "no match for platform in manifest"; an oci volume's listed
// platforms are each looked up.
func TestIndexWithoutPlatform(t *testing.T) {
	r := &fakeResolver{index: map[string][]ocispecs.Platform{
		"example.com/o:1": {amd64, {OS: "linux", Architecture: "s390x"}},
		"example.com/p:1": {arm64},
	}}
	_, err := buildFor(t, everyKind, r, arm64)
	errs := specErrors(t, err)
	if len(errs) != 2 || errs[0].Field != "onboot[0].image" || errs[0].Line != 6 ||
		!strings.Contains(errs[0].Msg, `image example.com/o:1 of "ob" has no manifest in its index for linux/arm64, the platform of this build`) {
		t.Fatalf("errors %v, want the first at onboot[0] naming the image and linux/arm64", err)
	}
	// the oci volume lists linux/amd64 too, whatever the build's platform
	for _, target := range []ocispecs.Platform{arm64, amd64} {
		_, err = buildFor(t, everyKind, r, target)
		errs = specErrors(t, err)
		last := errs[len(errs)-1]
		if last.Field != "volumes[2].platforms[1]" || last.Line != 20 ||
			!strings.Contains(last.Msg, `image example.com/p:1 of "ocp" has no manifest in its index for linux/amd64, a platform the volume lists`) {
			t.Fatalf("%s build: errors %v, want the last at volumes[2].platforms[1] for linux/amd64", target.Architecture, err)
		}
	}
}

// TestPlatformMatching: what BuildKit accepts for the platform asked for
// (containerd's platforms.Only) is accepted, with a warning for a 32-bit
// image in a 64-bit build; the kernel must be for the architecture itself;
// a config without os or architecture is taken with a warning.
func TestPlatformMatching(t *testing.T) {
	p := func(s string) ocispecs.Platform {
		f := strings.Split(s, "/")
		for len(f) < 3 {
			f = append(f, "")
		}
		return ocispecs.Platform{OS: f[0], Architecture: f[1], Variant: f[2]}
	}
	for _, tc := range []struct {
		target, found string
		kernel        bool
		want          string // "" accepted silently, "warn: ..." accepted with a warning, else part of the error
	}{
		{"linux/arm64", "linux/arm64/v8", false, ""},
		{"linux/arm64/v8", "linux/arm64", true, ""},
		{"linux/arm64", "linux/aarch64", true, ""},
		{"linux/amd64", "linux/x86_64", true, ""},
		{"linux/arm/v7", "linux/arm/v6", false, ""},
		{"linux/arm/v6", "linux/arm/v7", false, "is for linux/arm/v7, not for linux/arm/v6"},
		{"linux/arm64", "linux/arm/v7", false, "warn: is for linux/arm/v7, which BuildKit accepts for linux/arm64: it runs only on a kernel that runs 32-bit arm programs"},
		{"linux/arm64", "linux/arm/v7", true, "is for linux/arm/v7, but the kernel must be for linux/arm64"},
		{"linux/amd64", "linux/386", false, "warn: is for linux/386"},
		{"linux/amd64", "windows/amd64", false, "is for windows/amd64, not for linux/amd64"},
		{"linux/amd64", "linux/amd64/v2", false, "is for linux/amd64/v2, not for linux/amd64"},
		{"linux/arm64", "linux/arm64/v8.2", false, "is for linux/arm64/v8.2, not for linux/arm64"},
		{"linux/arm/v7", "linux/arm/v8", false, "is for linux/arm/v8, not for linux/arm/v7"},
		{"linux/arm64", "linux/arm/v8", false, "warn: is for linux/arm/v8"},
		{"linux/arm64", "linux/amd64", false, "is for linux/amd64, not for linux/arm64"},
		{"linux/arm64", "//", false, "warn: its config names no os or architecture; using it as linux/arm64"},
		{"linux/arm64", "//", true, "warn: its config names no os or architecture"},
		{"linux/arm64", "/arm64", false, "warn: its config names no os; using it as linux/arm64"},
		{"linux/arm64", "linux", false, "warn: its config names no architecture; using it as linux/arm64"},
		{"linux/arm64", "/amd64", false, "is for linux/amd64, not for linux/arm64"},
	} {
		t.Run(tc.target+" "+tc.found, func(t *testing.T) {
			yml := "onboot:\n  - name: one\n    image: example.com/x:1\n  - name: two\n    image: example.com/x:1\n"
			field := "onboot[0].image"
			if tc.kernel {
				yml = "kernel:\n  image: example.com/x:1\n"
				field = "kernel.image"
			}
			r := &fakeResolver{single: map[string]ocispecs.Platform{"example.com/x:1": p(tc.found)}}
			warnings, err := buildFor(t, yml, r, p(tc.target))
			switch {
			case tc.want == "":
				if err != nil || len(warnings) > 0 {
					t.Errorf("error %v, warnings %v; want neither", err, warnings)
				}
			case strings.HasPrefix(tc.want, "warn: "):
				if err != nil {
					t.Fatalf("error %v, want a warning", err)
				}
				// once per image, at its first use
				if len(warnings) != 1 || warnings[0].Field != field || warnings[0].Pos.Line != 2 ||
					!strings.Contains(warnings[0].Msg, strings.TrimPrefix(tc.want, "warn: ")) {
					t.Errorf("warnings %v, want one at p.yml:2 %s saying %q", warnings, field, tc.want)
				}
			default:
				errs := specErrors(t, err)
				if !strings.Contains(errs[0].Msg, tc.want) || errs[0].Field != field {
					t.Errorf("error %v, want %s: ...%s", err, field, tc.want)
				}
			}
		})
	}
}
