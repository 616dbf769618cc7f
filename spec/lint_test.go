package spec

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestLintRules: each rule warns at the value it is about (file:line:col
// and field path), and stays silent on the YAML that is right.
func TestLintRules(t *testing.T) {
	const head = "kernel:\n  image: linuxkit/kernel:6.12.59\ninit:\n  - linuxkit/init:v1\n"
	tests := []struct {
		rule *LintRule
		yaml string
		want []string // "line:col field: substring of the message"
	}{
		{RuleMovingImageTag, "kernel:\n  image: linuxkit/kernel\ninit:\n  - linuxkit/init:latest\n  - linuxkit/runc:v1\nonboot:\n  - name: a\n    image: busybox@sha256:" + strings.Repeat("a", 64) + "\nservices:\n  - name: b\n    image: docker.io/library/nginx:latest\nvolumes:\n  - name: v\n    image: alpine\n",
			[]string{"2:10 kernel.image: has no tag", "4:5 init[0]: uses the tag latest", "11:12 services[0].image: uses the tag latest", "14:12 volumes[0].image: has no tag"}},
		{RuleMovingImageTag, head + "onboot:\n  - name: a\n    image: busybox:1.36\n", nil},
		{RuleMovingImageTag, head + "x: &img busybox\nonboot:\n  - name: a\n    image: *img\n",
			nil}, // unknown key x: Lint returns Load's error, checked below
		{RuleTrustIgnored, head + "trust:\n  org:\n    - linuxkit\n", []string{"5:1 trust: is ignored"}},
		{RuleTrustIgnored, head, nil},
		{RuleDuplicateCapability, head + "services:\n  - name: s\n    image: a:1\n    capabilities:\n      - CAP_NET_ADMIN\n      - CAP_SYS_ADMIN\n      - CAP_NET_ADMIN\n    capabilities.add: [CAP_SYS_ADMIN, CAP_CHOWN, CAP_CHOWN]\n    ambient: [CAP_CHOWN, CAP_CHOWN]\n",
			[]string{"11:9 services[0].capabilities[2]: CAP_NET_ADMIN is listed twice in capabilities (first at a.yml:9:9)",
				"12:50 services[0].capabilities.add[2]: CAP_CHOWN is listed twice",
				"12:24 services[0].capabilities.add[0]: CAP_SYS_ADMIN is already in capabilities",
				"13:26 services[0].ambient[1]: CAP_CHOWN is listed twice"}},
		{RuleDuplicateCapability, head + "onboot:\n  - name: s\n    image: a:1\n    capabilities: [CAP_NET_ADMIN]\n    capabilities.add: [CAP_SYS_ADMIN]\n    ambient: [CAP_NET_ADMIN]\n", nil},
		{RuleHostNetworkAllCaps, head + "services:\n  - name: s\n    image: a:1\n    net: host\n    capabilities: [all]\n  - name: t\n    image: a:1\n    net: host\n    capabilities: [CAP_NET_ADMIN]\n",
			[]string{"8:10 services[0].net: service s runs in the host's network namespace with every capability (capabilities: [all] at a.yml:9:20)"}},
		{RuleHostNetworkAllCaps, head + "services:\n  - name: s\n    image: a:1\n    capabilities: [ALL]\n", nil},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.rule.Name, i), func(t *testing.T) {
			ws, err := Lint(Source{Filename: "a.yml", Data: []byte(tt.yaml)})
			if strings.Contains(tt.yaml, "\nx: ") {
				var errs Errors
				if !errors.As(err, &errs) || len(ws) != 0 {
					t.Fatalf("Lint of a YAML with an unknown key: warnings %v error %v, want Errors", ws, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ws {
				if w.Rule != tt.rule {
					t.Errorf("unexpected %s warning: %s", w.Rule.Name, w)
					continue
				}
				if w.Pos.File != "a.yml" {
					t.Errorf("warning in file %q", w.Pos.File)
				}
				got = append(got, fmt.Sprintf("%d:%d %s: %s", w.Pos.Line, w.Pos.Col, w.Field, w.Msg))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("warnings:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for _, want := range tt.want {
				found := false
				for _, g := range got {
					if strings.HasPrefix(want, g[:strings.Index(g, ": ")+2]) && strings.Contains(g, want[strings.Index(want, ": ")+2:]) {
						found = true
					}
				}
				if !found {
					t.Errorf("no warning %q in:\n%s", want, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// TestLintMergedFiles: each file's warnings are at their own file's
// positions, and a problem across files (a name defined twice) is Load's
// error, not a warning.
func TestLintMergedFiles(t *testing.T) {
	a := Source{Filename: "a.yml", Data: []byte("kernel:\n  image: linuxkit/kernel:6.12.59\ninit:\n  - linuxkit/init:v1\n")}
	b := Source{Filename: "b.yml", Data: []byte("services:\n  - name: s\n    image: nginx\n")}
	ws, err := Lint(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].String() != `b.yml:3:12: services[0].image: image "nginx" has no tag, which means latest: a tag that moves (pin a version tag or a digest)` {
		t.Errorf("warnings %v", ws)
	}
	if _, err := Lint(a, b, Source{Filename: "c.yml", Data: b.Data}); err == nil || !strings.Contains(err.Error(), "c.yml:2:11: services[0].name: duplicate service name") {
		t.Errorf("error %v, want the duplicate service of c.yml", err)
	}
}

// TestLintRulesDocumented: every rule has a section of docs/check.md.
func TestLintRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/check.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range LintRules {
		if !strings.Contains(string(doc), "\n## "+r.Name+"\n") {
			t.Errorf("docs/check.md has no section ## %s", r.Name)
		}
		if r.Description == "" {
			t.Errorf("rule %s has no description", r.Name)
		}
	}
}

// TestLintExamples: the examples have no warnings.
func TestLintExamples(t *testing.T) {
	data, err := os.ReadFile("../examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := Lint(Source{Filename: "minimal.yml", Data: data})
	if err != nil || len(ws) != 0 {
		t.Errorf("examples/minimal.yml: warnings %v, error %v", ws, err)
	}
}
