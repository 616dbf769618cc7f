package frontend

import (
	"context"
	"fmt"
	"sync"

	"github.com/containerd/platforms"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/result"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// ArgSBOM turns the SBOM in the root filesystem (llbgen.SBOMPath) off
// with false or 0, as LinuxKit's --no-sbom; the default (unset or empty)
// is on, as is true or 1 (buildarg.Bool: nothing else is taken). It does
// not affect the SBOM attestation buildx asks for with --sbom=true.
const ArgSBOM = "SBOM"

// parseSBOM reads the SBOM build-arg: "" is on, else exactly one of
// buildarg.BoolValues.
func parseSBOM(v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	on, err := buildarg.Bool(v)
	if err != nil {
		return false, fmt.Errorf("build-arg %s: %w (false or 0 leaves %s out of the root filesystem, as linuxkit build --no-sbom)", ArgSBOM, err, llbgen.SBOMPath)
	}
	return on, nil
}

// checkSBOMHelper fails when the SBOM is on but no helper image can
// write it (lkbuild build without --helper-image or LKBUILD_FRONTEND).
func checkSBOMHelper(on bool, helper *llb.State) error {
	if on && helper == nil {
		return fmt.Errorf("the SBOM (%s) is written by the lkbuild helper image, which is not set: give one (--helper-image, LKBUILD_FRONTEND) or turn the SBOM off with --build-arg %s=false", llbgen.SBOMPath, ArgSBOM)
	}
	return nil
}

// sbomLayers keeps each platform's SBOM layer between the build of the
// platforms and the attestations.
type sbomLayers struct {
	mu sync.Mutex
	m  map[string]*llb.State
}

// platformID is the key of a platform in a result, as the Dockerfile
// frontend computes it.
func platformID(p ocispecs.Platform) string {
	return platforms.FormatAll(platforms.Normalize(p))
}

// set keeps st for the platform bc.Build's callback was given (nil: the
// default platform, as dockerui keys the result).
func (s *sbomLayers) set(platform *ocispecs.Platform, st *llb.State) {
	p := platforms.DefaultSpec()
	if platform != nil {
		p = *platform
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*llb.State{}
	}
	s.m[platformID(p)] = st
}

// attest attaches each platform's SBOM layer to rb as the platform's SPDX
// in-toto attestation (the document at llbgen.SBOMPath), which is what
// buildx's --sbom=true and --attest type=sbom ask for: BuildKit then runs
// no scanner of its own over the result. The generator and the other
// parameters of the request are not used.
func (s *sbomLayers) attest(ctx context.Context, c client.Client, rb *dockerui.ResultBuilder, marshal func(ocispecs.Platform) []llb.ConstraintsOpt) error {
	return rb.EachPlatform(ctx, func(ctx context.Context, id string, p ocispecs.Platform) error {
		s.mu.Lock()
		st := s.m[id]
		s.mu.Unlock()
		if st == nil {
			return fmt.Errorf("no SBOM for platform %s: the SBOM is written by the lkbuild helper image, which is not set", id)
		}
		def, err := marshalState(ctx, *st, marshal(p)...)
		if err != nil {
			return fmt.Errorf("marshalling the SBOM's LLB: %w", err)
		}
		res, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return err
		}
		rb.AddAttestation(id, result.Attestation[client.Reference]{
			Kind: gatewaypb.AttestationKind_InToto,
			Ref:  ref,
			Path: llbgen.SBOMPath,
			Metadata: map[string][]byte{
				result.AttestationReasonKey: []byte(result.AttestationReasonSBOM),
			},
			InToto: result.InTotoAttestation{PredicateType: intoto.PredicateSPDX},
		})
		return nil
	})
}
