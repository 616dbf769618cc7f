package sbom

import (
	"fmt"
	"io"
	"os"
)

// Build scans every tree of in once and returns the document's bytes
// (Generate, then Marshal). Problems that do not stop it (an embedded
// document that does not parse) are written to log.
func Build(in Input, log io.Writer) ([]byte, error) {
	trees := map[string]*Tree{}
	for _, im := range in.Images {
		if _, ok := trees[im.Tree]; ok {
			continue
		}
		t, err := ScanTree(im.Tree)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", im.Field, im.Ref, err)
		}
		for _, n := range t.Notes {
			fmt.Fprintf(log, "sbom: %s (%s): %s\n", im.Field, im.Ref, n)
		}
		trees[im.Tree] = t
	}
	doc, err := Generate(in, trees)
	if err != nil {
		return nil, err
	}
	return Marshal(doc)
}

// WriteFile writes the document of in to the file name: mode 0644, its
// modification time in.Created.
func WriteFile(in Input, name string, log io.Writer) error {
	dt, err := Build(in, log)
	if err != nil {
		return err
	}
	if err := os.WriteFile(name, dt, 0o644); err != nil {
		return fmt.Errorf("writing the SBOM: %w", err)
	}
	if err := os.Chmod(name, 0o644); err != nil { // whatever the umask
		return fmt.Errorf("writing the SBOM: %w", err)
	}
	if err := os.Chtimes(name, in.Created, in.Created); err != nil {
		return fmt.Errorf("writing the SBOM: %w", err)
	}
	return nil
}
