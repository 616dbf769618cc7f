package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestParseBind: a bind is SOURCE:DESTINATION[:OPTIONS]; the fields a
// malformed one has are still read (volume resolution reads its source),
// but only two or three fields are a bind.
func TestParseBind(t *testing.T) {
	for _, c := range []struct {
		in       string
		want     Bind
		ok, ro   bool
		mountOpt string // the mount's options, comma separated
	}{
		{"/a:/b", Bind{Source: "/a", Destination: "/b"}, true, false, "rw,rbind,rshared"},
		{"vol:/b", Bind{Source: "vol", Destination: "/b"}, true, false, "rw,rbind,rshared"},
		{"vol:/b:ro", Bind{Source: "vol", Destination: "/b", Options: []string{"ro"}}, true, true, "ro,rbind"},
		{"/a:/b:rw,rshared", Bind{Source: "/a", Destination: "/b", Options: []string{"rw", "rshared"}}, true, false, "rw,rshared,rbind"},
		{"/a:/b:ro,rshared", Bind{Source: "/a", Destination: "/b", Options: []string{"ro", "rshared"}}, true, false, "ro,rshared,rbind"},
		{"/a:/b:", Bind{Source: "/a", Destination: "/b", Options: []string{""}}, true, false, ",rbind"},
		{":/b", Bind{Destination: "/b"}, true, false, "rw,rbind,rshared"},
		{"/a:", Bind{Source: "/a"}, true, false, "rw,rbind,rshared"},
		{"vol", Bind{Source: "vol"}, false, false, ""},
		{"", Bind{}, false, false, ""},
		{"vol:/b:ro:x", Bind{Source: "vol", Destination: "/b", Options: []string{"ro"}}, false, true, ""},
	} {
		got, ok := ParseBind(c.in)
		if ok != c.ok || got.Source != c.want.Source || got.Destination != c.want.Destination ||
			!slices.Equal(got.Options, c.want.Options) || (got.Options == nil) != (c.want.Options == nil) {
			t.Errorf("ParseBind(%q) = %#v, %v; want %#v, %v", c.in, got, ok, c.want, c.ok)
		}
		if got.ReadOnly() != c.ro {
			t.Errorf("ParseBind(%q).ReadOnly() = %v, want %v", c.in, got.ReadOnly(), c.ro)
		}
		if !ok {
			continue
		}
		m := got.Mount()
		if m.Type != "bind" || m.Source != c.want.Source || m.Destination != c.want.Destination || strings.Join(m.Options, ",") != c.mountOpt {
			t.Errorf("ParseBind(%q).Mount() = %+v, want a bind with options %s", c.in, m, c.mountOpt)
		}
	}
}

// TestBindMountOptionsAreCopied: a bind's mount does not share the
// bind's options, so appending rbind leaves the bind as it was.
func TestBindMountOptionsAreCopied(t *testing.T) {
	b := Bind{Source: "/a", Destination: "/b", Options: make([]string, 1, 4)}
	b.Options[0] = "ro"
	m := b.Mount()
	m.Options[0] = "changed"
	if b.Options[0] != "ro" || len(b.Options) != 1 {
		t.Errorf("the bind's options changed: %q", b.Options)
	}
}

// TestWithSource: resolving a volume replaces only the text before the
// first colon.
func TestWithSource(t *testing.T) {
	for in, want := range map[string]string{
		"v:/b":        "/containers/volumes/v/merged:/b",
		"v:/b:ro":     "/containers/volumes/v/merged:/b:ro",
		"v":           "/containers/volumes/v/merged",
		"v:/b:ro:x:y": "/containers/volumes/v/merged:/b:ro:x:y",
	} {
		if got := withSource(in, "/containers/volumes/v/merged"); got != want {
			t.Errorf("withSource(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVolumesResolvedOnce: Load (Check) resolves the volume references of
// each entry once, and Bundles uses that resolution.
func TestVolumesResolvedOnce(t *testing.T) {
	cfg, err := Load(Source{"t.yml", []byte("kernel:\n  image: k\ninit: [i]\nvolumes:\n  - name: v\n    readonly: true\n" +
		"onboot:\n  - name: a\n    image: b\n    binds: [\"v:/v:ro\", \"/x:/y\"]\n" +
		"    mounts:\n      - {type: bind, source: v, destination: /w, options: [rbind, ro]}\n")})
	if err != nil {
		t.Fatal(err)
	}
	img := cfg.Onboot[0]
	if img.resolved == nil {
		t.Fatal("Load did not keep the resolved entry")
	}
	vols := cfg.volumes()
	if r, err := img.withVolumes(vols); err != nil || r != img.resolved {
		t.Errorf("withVolumes resolved again: %p, want %p (%v)", r, img.resolved, err)
	}
	if got := strings.Join(*img.resolved.Binds, " "); got != "/containers/volumes/v/merged:/v:ro /x:/y" {
		t.Errorf("resolved binds %s", got)
	}
	if (*img.Binds)[0] != "v:/v:ro" {
		t.Errorf("the entry's own binds changed: %q", *img.Binds)
	}
	bs, err := Bundles(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var oci struct {
		Mounts []struct{ Destination, Source string }
	}
	if err := json.Unmarshal(bs[0].Config, &oci); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, m := range oci.Mounts {
		found[m.Destination] = m.Source
	}
	if found["/v"] != "/containers/volumes/v/merged" || found["/w"] != "/containers/volumes/v/merged" || found["/y"] != "/x" {
		t.Errorf("config.json mounts %v", found)
	}
}
