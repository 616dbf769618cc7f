package frontend

import (
	"slices"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func parse(t *testing.T, list string) []formats.Target {
	t.Helper()
	ts, err := formats.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestResultImage: the docker target's image runs LinuxKit's init, as
// `docker build` of its Dockerfile would; other targets get no entrypoint.
func TestResultImage(t *testing.T) {
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	img := resultImage(amd64, parse(t, "docker"))
	if !slices.Equal(img.Config.Entrypoint, []string{"/bin/rc.init"}) || len(img.Config.Cmd) != 0 {
		t.Errorf("docker: entrypoint %q cmd %q", img.Config.Entrypoint, img.Config.Cmd)
	}
	if len(img.Config.Env) != 1 || img.Config.Env[0] != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("docker: env %q", img.Config.Env)
	}
	if img.Architecture != "amd64" || img.Config.Labels["org.mobyproject.linuxkit.target"] != "docker" {
		t.Errorf("docker: platform %v labels %v", img.Platform, img.Config.Labels)
	}
	for _, tg := range []string{"tar", "kernel+initrd,iso-efi"} {
		img := resultImage(amd64, parse(t, tg))
		if img.Config.Entrypoint != nil || img.Config.Env != nil || img.Config.Labels["org.mobyproject.linuxkit.target"] != tg {
			t.Errorf("%s: config %+v", tg, img.Config)
		}
	}
}
