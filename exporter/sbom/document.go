package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/lkbuild/lkbuild/internal/sbominput"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// Input is what the frontend knows of the system (sbominput.Input); the
// helper reads it as JSON.
type Input = sbominput.Input

// Image is one use of an image in the YAML (sbominput.Image).
type Image = sbominput.Image

// Namespace is the prefix of the documents' namespaces; the rest is the
// system's name and a hash of the document.
const Namespace = "https://github.com/lkbuild/lkbuild/sbom/"

// Creator is the tool named in the documents' creation info.
const Creator = "lkbuild"

// noAssertion is SPDX's "the creator makes no assertion" value.
const noAssertion = "NOASSERTION"

// ID of the package that stands for the whole system.
const systemID = "System"

// Generate builds the SPDX document of in. trees holds the scan of every
// Image.Tree of in. The packages are the system, each image use (in YAML
// order) and the packages found in the images (sorted within each image),
// related as DOCUMENT DESCRIBES system, system CONTAINS image, image
// CONTAINS package. Every identifier is derived from the contents, and the
// namespace from a hash of the whole document, so equal inputs give equal
// bytes (see Marshal).
func Generate(in Input, trees map[string]*Tree) (*spdx.Document, error) {
	if in.Name == "" {
		return nil, fmt.Errorf("no system name")
	}
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
		DocumentName:   in.Name,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: Creator}},
			Created:  in.Created.UTC().Format("2006-01-02T15:04:05Z"),
		},
	}
	system := &spdx.Package{
		PackageName:             in.Name,
		PackageSPDXIdentifier:   systemID,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "OPERATING-SYSTEM",
		PackageComment:          fmt.Sprintf("LinuxKit system for %s assembled by lkbuild", in.Platform),
	}
	doc.Packages = append(doc.Packages, system)
	rel := func(a common.ElementID, kind string, b common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", string(a)),
			RefB:         common.MakeDocElementID("", string(b)),
			Relationship: kind,
		})
	}
	rel("DOCUMENT", common.TypeRelationshipDescribe, systemID)

	ids := map[common.ElementID]bool{systemID: true}
	unique := func(id common.ElementID) common.ElementID {
		if !ids[id] {
			ids[id] = true
			return id
		}
		for n := 2; ; n++ {
			if c := common.ElementID(fmt.Sprintf("%s-%d", id, n)); !ids[c] {
				ids[c] = true
				return c
			}
		}
	}
	// The packages of one tree are listed once, contained by every use.
	contents := map[string][]common.ElementID{}
	for _, im := range in.Images {
		t, ok := trees[im.Tree]
		if !ok {
			return nil, fmt.Errorf("%s: no scan of the image tree %s", im.Field, im.Tree)
		}
		p, err := imagePackage(im)
		if err != nil {
			return nil, err
		}
		p.PackageSPDXIdentifier = unique(elementID("Image", fieldID.Replace(im.Field)))
		doc.Packages = append(doc.Packages, p)
		rel(systemID, common.TypeRelationshipContains, p.PackageSPDXIdentifier)
		key := treeKey(im)
		pkgs, seen := contents[key]
		if !seen {
			for _, op := range t.Packages {
				sp := osPackage(op, t.Distro, im)
				sp.PackageSPDXIdentifier = unique(elementID("Package", op.Type, op.Name, hashOf(key, op.Type, op.Name, op.Version, op.Arch, op.Database)))
				doc.Packages = append(doc.Packages, sp)
				pkgs = append(pkgs, sp.PackageSPDXIdentifier)
			}
			for _, e := range t.Embedded {
				for i, ep := range e.Doc.Packages {
					sp := embeddedPackage(ep, e.Path, im)
					sp.PackageSPDXIdentifier = unique(elementID("Embedded", ep.PackageName, hashOf(key, e.Path, fmt.Sprint(i), string(ep.PackageSPDXIdentifier))))
					doc.Packages = append(doc.Packages, sp)
					pkgs = append(pkgs, sp.PackageSPDXIdentifier)
				}
			}
			contents[key] = pkgs
		}
		for _, id := range pkgs {
			rel(p.PackageSPDXIdentifier, common.TypeRelationshipContains, id)
		}
	}
	return doc, nil
}

// Marshal writes doc as indented JSON, setting its namespace to Namespace,
// the document's name and the SHA-256 of the document written with an
// empty namespace: the same contents always give the same bytes, and
// different contents a different namespace.
func Marshal(doc *spdx.Document) ([]byte, error) {
	doc.DocumentNamespace = ""
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing the SPDX document: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	doc.DocumentNamespace = Namespace + url.PathEscape(doc.DocumentName) + "-" + hex.EncodeToString(sum[:])
	buf.Reset()
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing the SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}

// treeKey identifies an image's contents: its pinned reference, else (a
// named build context) its reference, with the platform.
func treeKey(im Image) string {
	id := im.Pinned
	if id == "" {
		id = "context:" + im.Ref
	}
	return id + " " + im.Platform
}

// imagePackage describes one use of an image.
func imagePackage(im Image) (*spdx.Package, error) {
	p := &spdx.Package{
		PackageName:             im.Ref,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageFileName:         path.Join("/", im.Path),
	}
	where := "its tree is at " + path.Join("/", im.Path)
	switch {
	case im.Layout:
		where = "stored as an OCI image layout at " + path.Join("/", im.Path)
	case im.MountedAt != "":
		where = fmt.Sprintf("mounted at boot on %s from %s (an earlier entry's copy of the image)", path.Join("/", im.MountedAt), path.Join("/", im.Path))
	}
	entry := ""
	if im.Entry != "" {
		entry = fmt.Sprintf(" (%s)", im.Entry)
	}
	source := "resolved to " + im.Pinned
	if im.Pinned == "" {
		source = "provided by a named build context"
	}
	p.PackageComment = fmt.Sprintf("%s%s: %s for %s, %s", im.Field, entry, source, im.Platform, where)
	if im.Pinned == "" {
		return p, nil
	}
	named, err := reference.ParseNormalizedNamed(im.Pinned)
	if err != nil {
		return nil, fmt.Errorf("%s: image %q: %w", im.Field, im.Pinned, err)
	}
	canon, ok := named.(reference.Canonical)
	if !ok {
		return p, nil
	}
	dgst := canon.Digest()
	p.PackageVersion = dgst.String()
	p.PackageDownloadLocation = noAssertion
	if dgst.Algorithm() == "sha256" {
		p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: dgst.Encoded()}}
	}
	// pkg:oci/<name>@<digest>?repository_url=<registry/path>&tag=<tag>&arch=...
	q := []string{"repository_url=" + qualifierEscape(named.Name())}
	if tagged, err := reference.ParseNormalizedNamed(im.Ref); err == nil {
		if t, ok := reference.TagNameOnly(tagged).(reference.Tagged); ok {
			q = append(q, "tag="+purlEscape(t.Tag()))
		}
	}
	if os, arch, ok := strings.Cut(im.Platform, "/"); ok {
		arch, variant, _ := strings.Cut(arch, "/")
		q = append(q, "arch="+purlEscape(arch))
		if os != "" {
			q = append(q, "os="+purlEscape(os))
		}
		if variant != "" {
			q = append(q, "variant="+purlEscape(variant))
		}
	}
	sort.Strings(q)
	p.PackageExternalReferences = []*spdx.PackageExternalReference{{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  "pkg:oci/" + purlEscape(path.Base(named.Name())) + "@" + purlEscape(dgst.String()) + "?" + strings.Join(q, "&"),
	}}
	return p, nil
}

// osPackage describes a package of an image's package database.
func osPackage(op Package, distro string, im Image) *spdx.Package {
	p := &spdx.Package{
		PackageName:             op.Name,
		PackageVersion:          op.Version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PackageSummary:          op.Summary,
		PrimaryPackagePurpose:   "LIBRARY",
		PackageComment:          fmt.Sprintf("recorded in /%s of %s", op.Database, im.Ref),
	}
	if op.License != "" {
		if ok, _ := spdxexp.ValidateLicenses([]string{op.License}); ok {
			p.PackageLicenseDeclared = op.License
		} else {
			p.PackageLicenseComments = "the package database gives the license as " + op.License
		}
	}
	if strings.HasPrefix(op.Homepage, "https://") || strings.HasPrefix(op.Homepage, "http://") {
		if u, err := url.Parse(op.Homepage); err == nil && u.Host != "" {
			p.PackageHomePage = op.Homepage
		}
	}
	if op.Maintainer != "" {
		p.PackageSupplier = &common.Supplier{SupplierType: "Person", Supplier: op.Maintainer}
	}
	if op.Source != "" && op.Source != op.Name {
		p.PackageSourceInfo = "built from the source package " + op.Source
	}
	ns := distro
	if ns == "" {
		ns = map[string]string{"apk": "alpine", "deb": "debian"}[op.Type]
	}
	locator := "pkg:" + op.Type + "/" + purlEscape(ns) + "/" + purlEscape(op.Name) + "@" + purlEscape(op.Version)
	var q []string
	if op.Arch != "" {
		q = append(q, "arch="+purlEscape(op.Arch))
	}
	if op.Source != "" && op.Source != op.Name {
		key := "upstream"
		if op.Type == "apk" {
			key = "origin"
		}
		q = append(q, key+"="+purlEscape(op.Source))
	}
	sort.Strings(q)
	if len(q) > 0 {
		locator += "?" + strings.Join(q, "&")
	}
	p.PackageExternalReferences = []*spdx.PackageExternalReference{{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  locator,
	}}
	return p
}

// embeddedPackage copies a package of an SPDX document found in an image:
// its name, version, supplier, origin, licenses, checksums and external
// references (its files and relationships are not copied).
func embeddedPackage(ep *spdx.Package, docPath string, im Image) *spdx.Package {
	p := &spdx.Package{
		PackageName:               ep.PackageName,
		PackageVersion:            ep.PackageVersion,
		PackageSupplier:           ep.PackageSupplier,
		PackageOriginator:         ep.PackageOriginator,
		PackageDownloadLocation:   ep.PackageDownloadLocation,
		PackageChecksums:          ep.PackageChecksums,
		PackageHomePage:           ep.PackageHomePage,
		PackageSourceInfo:         ep.PackageSourceInfo,
		PackageLicenseConcluded:   ep.PackageLicenseConcluded,
		PackageLicenseDeclared:    ep.PackageLicenseDeclared,
		PackageCopyrightText:      ep.PackageCopyrightText,
		PackageSummary:            ep.PackageSummary,
		PackageExternalReferences: ep.PackageExternalReferences,
		PrimaryPackagePurpose:     ep.PrimaryPackagePurpose,
		PackageComment:            fmt.Sprintf("listed by /%s of %s", docPath, im.Ref),
	}
	if p.PackageName == "" {
		p.PackageName = noAssertion
	}
	if p.PackageDownloadLocation == "" {
		p.PackageDownloadLocation = noAssertion
	}
	return p
}

// elementID makes an SPDX identifier (without "SPDXRef-") of parts: only
// letters, digits, "." and "-" are allowed; a run of other bytes becomes
// one "-".
func elementID(parts ...string) common.ElementID {
	var b strings.Builder
	for i, s := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
				b.WriteByte(c)
			default:
				if n := b.Len(); n > 0 && b.String()[n-1] != '-' {
					b.WriteByte('-')
				}
			}
		}
	}
	return common.ElementID(strings.TrimSuffix(b.String(), "-"))
}

// fieldID shortens a YAML field for an identifier: onboot[0].image
// becomes onboot-0.image.
var fieldID = strings.NewReplacer("[", "-", "]", "")

// hashOf is a short hex hash of parts, which tells apart packages of
// equal names from different images or databases.
func hashOf(parts ...string) string {
	dt, _ := json.Marshal(parts)
	sum := sha256.Sum256(dt)
	return hex.EncodeToString(sum[:6])
}

// qualifierEscape is purlEscape keeping "/", as package URL qualifier
// values (repository_url=docker.io/library/busybox) are written.
func qualifierEscape(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = purlEscape(p)
	}
	return strings.Join(parts, "/")
}

// purlEscape percent-encodes s for a package URL component: everything
// but letters, digits and "-._~" (so an epoch's ":" and a digest's ":"
// become %3A).
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
