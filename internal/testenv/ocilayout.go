package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// OCILayout exports the image ref (from the registry, for platform p) into
// dir as an OCI image layout, with the daemon's OCI exporter, so that tests
// can give lkbuild an image that exists only on disk.
func OCILayout(t testing.TB, e Env, ref string, p ocispecs.Platform, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.New(ctx, e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	def, err := llb.Image(ref, llb.Platform(p)).Marshal(ctx, llb.Platform(p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Solve(ctx, def, client.SolveOpt{Exports: []client.ExportEntry{{
		Type:      client.ExporterOCI,
		OutputDir: dir,
		Attrs:     map[string]string{"tar": "false"},
	}}}, nil); err != nil {
		t.Fatalf("exporting %s as an OCI layout: %v", ref, err)
	}
}
