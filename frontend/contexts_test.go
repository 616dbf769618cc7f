package frontend

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/gateway/client"
)

// optsClient is a client with only build options.
type optsClient struct {
	client.Client
	opts map[string]string
}

func (c optsClient) BuildOpts() client.BuildOpts { return client.BuildOpts{Opts: c.opts} }

// TestContextAliases: a build context keyed by an image's full name
// (docker.io/..., :latest) is also keyed by the short form dockerui looks
// up, with its platform suffix and shared key; short keys and other
// contexts stay as they are; two keys for the same image with different
// values are an error.
func TestContextAliases(t *testing.T) {
	c, err := withContextAliases(optsClient{opts: map[string]string{
		"context:docker.io/linuxkit/init:abc":                              "oci-layout://s@sha256:1",
		"context:docker.io/library/busybox:latest::linux/arm64":            "docker-image://x",
		"sharedkey:localdir:docker.io/library/busybox:latest::linux/arm64": "k",
		"context:linuxkit/runc:abc":                                        "local:r",
		"context:docker.io/linuxkit/runc:abc":                              "local:r",
		"context:foo":                                                      "input:foo",
		"build-arg:X":                                                      "1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := c.BuildOpts().Opts
	for k, v := range map[string]string{
		"context:linuxkit/init:abc":               "oci-layout://s@sha256:1",
		"context:docker.io/linuxkit/init:abc":     "oci-layout://s@sha256:1",
		"context:busybox::linux/arm64":            "docker-image://x",
		"sharedkey:localdir:busybox::linux/arm64": "k",
		"context:linuxkit/runc:abc":               "local:r",
		"context:foo":                             "input:foo",
		"build-arg:X":                             "1",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != 10 {
		t.Errorf("options %v: want the 7 given and 3 aliases", got)
	}
	_, err = withContextAliases(optsClient{opts: map[string]string{
		"context:linuxkit/init:abc":           "local:a",
		"context:docker.io/linuxkit/init:abc": "local:b",
	}})
	if err == nil || !strings.Contains(err.Error(), "name the same image") {
		t.Errorf("err = %v, want two contexts for one image refused", err)
	}
}
