package frontend

import (
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/moby/buildkit/util/system"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// resultImage is the image config of a platform's result: the targets
// built as a label and, for the target that carries LinuxKit's Dockerfile
// (docker), what `docker build` of
// LinuxKit's Dockerfile (FROM scratch, COPY . ./, ENTRYPOINT
// ["/bin/rc.init"]) gives, so that exporting the result as an image
// (-o type=image, --load) gives a runnable image of the system.
func resultImage(tp ocispecs.Platform, targets []formats.Target) *dockerspec.DockerOCIImage {
	img := &dockerspec.DockerOCIImage{Image: ocispecs.Image{Platform: tp}}
	img.Config.Labels = map[string]string{"org.mobyproject.linuxkit.target": formats.Names(targets)}
	if len(targets) == 1 && targets[0].Dockerfile {
		img.Config.Entrypoint = []string{llbgen.DockerEntrypoint}
		img.Config.Env = []string{"PATH=" + system.DefaultPathEnv(tp.OS)}
	}
	return img
}
