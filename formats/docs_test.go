package formats

import (
	"fmt"
	"github.com/lkbuild/lkbuild/internal/golden"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// generated is a section of a markdown file that renders the table.
type generated struct {
	file   string
	name   string // the markers' name
	render func(doc string) string
}

var generatedDocs = []generated{
	{"../README.md", "targets", readmeTable},
	{"../docs/formats.md", "formats", formatsTable},
}

func begin(name string) string {
	return "<!-- " + name + ": generated from package formats by `go generate ./formats`; do not edit -->\n"
}

func end(name string) string { return "<!-- end of " + name + " -->\n" }

// TestDocsTables: the tables of targets in README.md and docs/formats.md
// are the ones the table renders; -update (go generate ./formats) rewrites
// them.
func TestDocsTables(t *testing.T) {
	for _, g := range generatedDocs {
		dt, err := os.ReadFile(g.file)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(dt)
		b, e := strings.Index(doc, begin(g.name)), strings.Index(doc, end(g.name))
		if b < 0 || e < b {
			t.Errorf("%s: no section between the markers %q and %q", g.file, begin(g.name), end(g.name))
			continue
		}
		b += len(begin(g.name))
		want := g.render(doc)
		if doc[b:e] == want {
			continue
		}
		if !golden.Update() {
			t.Errorf("%s: the table of targets is out of date: run go generate ./formats (or go test ./formats -run TestDocsTables -update)", g.file)
			continue
		}
		if err := os.WriteFile(g.file, []byte(doc[:b]+want+doc[e:]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFormatsDocSections: docs/formats.md has, for every target, a section
// whose heading names it and a row saying what it does without a kernel.
func TestFormatsDocSections(t *testing.T) {
	dt, err := os.ReadFile("../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(dt)
	kernelless := section(doc, "## Without a kernel")
	for _, tg := range All() {
		if anchor(doc, tg.Name) == "" {
			t.Errorf("docs/formats.md: no section heading names %s", tg.Name)
		}
		if !strings.Contains(kernelless, "| `"+tg.Name+"` |") {
			t.Errorf("docs/formats.md, Without a kernel: no row for %s", tg.Name)
		}
	}
}

// section returns the part of doc from the heading to the next heading of
// the same level.
func section(doc, heading string) string {
	i := strings.Index(doc, heading+"\n")
	if i < 0 {
		return ""
	}
	s := doc[i+len(heading):]
	if j := strings.Index(s, "\n"+heading[:strings.Index(heading, " ")+1]); j >= 0 {
		s = s[:j]
	}
	return s
}

var nameRef = regexp.MustCompile(`<name>[^\s,:;)]*`)

// md quotes the file names (<name>...) of a description as code, so that
// markdown shows them rather than taking them for HTML.
func md(s string) string { return nameRef.ReplaceAllString(s, "`$0`") }

func files(tg Target) string {
	if tg.Tree {
		if tg.Dockerfile {
			return "the root filesystem tree, with `Dockerfile`"
		}
		return "the root filesystem tree"
	}
	var fs []string
	for _, a := range tg.Artifacts {
		fs = append(fs, "`<name>"+a+"`")
	}
	return strings.Join(fs, ", ")
}

func boots(tg Target) string {
	var s string
	switch tg.Boot {
	case BootNone:
		return "no"
	case BootInitrd:
		s = "from the initrd"
	case BootMedium:
		s = "root on the medium"
	}
	switch tg.Firmware {
	case AnyLoader:
		return s + ", by your loader"
	case BIOS:
		return s + ", BIOS"
	case EFI:
		return s + ", UEFI"
	}
	return s
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// readmeTable is README.md's list of targets.
func readmeTable(string) string {
	var b strings.Builder
	b.WriteString("| target | output |\n|---|---|\n")
	for _, tg := range table {
		name := "`" + tg.Name + "`"
		if tg.Name == Default {
			name += " (default)"
		}
		d := md(tg.Description)
		if len(tg.Arches) > 0 {
			d += " (" + strings.Join(tg.Arches, ", ") + " only)"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", name, d)
	}
	return b.String()
}

// formatsTable is docs/formats.md's overview of the targets.
func formatsTable(doc string) string {
	var b strings.Builder
	b.WriteString("| target | files | boots | architectures | kernel | cmdline | `SIZE` | boot test |\n|---|---|---|---|---|---|---|---|\n")
	for _, tg := range table {
		arches := "all"
		if len(tg.Arches) > 0 {
			arches = strings.Join(tg.Arches, ", ")
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s | %s | %s | %s | %s |\n", tg.Name, anchor(doc, tg.Name), files(tg), boots(tg), arches,
			yesNo(tg.NeedsKernel, "required", "optional"),
			yesNo(tg.Cmdline == CmdlineGRUB, "no GRUB characters", "any"),
			yesNo(tg.Disk, "yes", ""),
			yesNo(tg.NoBootTest == "", "yes", "no¹"))
	}
	b.WriteString("\n¹ Not booted by `hack/boottest`:\n\n")
	for _, tg := range table {
		if tg.NoBootTest != "" {
			fmt.Fprintf(&b, "- `%s`: %s.\n", tg.Name, tg.NoBootTest)
		}
	}
	return b.String()
}

// headings matches the markdown headings of a document.
var headings = regexp.MustCompile(`(?m)^##+ (.*)$`)

// anchor is the anchor (as GitHub makes it) of the heading of doc that
// names the target among its comma-separated words ("## tar, docker",
// "## kernel+initrd (default)"), or "" if none does.
func anchor(doc, name string) string {
	for _, h := range headings.FindAllStringSubmatch(doc, -1) {
		for _, w := range strings.Split(h[1], ",") {
			if strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(w), "(default)")) == name {
				return slug(h[1])
			}
		}
	}
	return ""
}

// slug is GitHub's anchor of a heading: lower case, spaces as hyphens,
// punctuation other than hyphens and underscores dropped.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
