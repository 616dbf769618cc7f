package sbom

import (
	"strings"
	"testing"
)

const apkDB = `C:Q1abcdefghijklmnopqrstuvwxyzA=
P:musl
V:1.2.5-r0
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712000000
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1xxxxxxxxxxxxxxxxxxxxxxxxxxx=

P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
T:Size optimized toolbox
U:https://busybox.net/

P:ssl_client
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only AND weird-license
o:busybox
`

func TestParseAPK(t *testing.T) {
	ps, err := ParseAPK([]byte(apkDB), APKInstalled)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("got %d packages, want 3: %+v", len(ps), ps)
	}
	want := Package{Type: "apk", Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", Source: "musl", License: "MIT",
		Maintainer: "Natanael Copa <ncopa@alpinelinux.org>", Homepage: "https://musl.libc.org/",
		Summary: "the musl c library (libc) implementation", Database: APKInstalled}
	if ps[0] != want {
		t.Errorf("musl = %+v\nwant %+v", ps[0], want)
	}
	if ps[2].Name != "ssl_client" || ps[2].Source != "busybox" {
		t.Errorf("third = %+v", ps[2])
	}
}

func TestParseAPKErrors(t *testing.T) {
	for name, db := range map[string]string{
		"no version": "P:musl\nA:x86_64\n",
		"no name":    "P:musl\nV:1\n\nV:2\n",
	} {
		if _, err := ParseAPK([]byte(db), APKInstalled); err == nil || !strings.Contains(err.Error(), APKInstalled) {
			t.Errorf("%s: err = %v, want an error naming the database", name, err)
		}
	}
	if ps, err := ParseAPK(nil, APKInstalled); err != nil || len(ps) != 0 {
		t.Errorf("empty database: %v %v", ps, err)
	}
}

const dpkgStatus = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files.
Homepage: https://tracker.debian.org/pkg/base-files

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc (2.36-9+deb12u4)
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: removed, configuration kept

Package: halfgone
Status: purge ok not-installed
Architecture: amd64
`

func TestParseDpkg(t *testing.T) {
	ps, err := ParseDpkg([]byte(dpkgStatus), DpkgStatus)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d packages, want the 2 installed: %+v", len(ps), ps)
	}
	want := Package{Type: "deb", Name: "base-files", Version: "12.4+deb12u5", Arch: "amd64",
		Maintainer: "Santiago Vila <sanvila@debian.org>", Homepage: "https://tracker.debian.org/pkg/base-files",
		Summary: "Debian base system miscellaneous files", Database: DpkgStatus}
	if ps[0] != want {
		t.Errorf("base-files = %+v\nwant %+v", ps[0], want)
	}
	if ps[1].Name != "libc6" || ps[1].Source != "glibc" || ps[1].Version != "2.36-9+deb12u4" {
		t.Errorf("libc6 = %+v", ps[1])
	}
}

func TestParseDpkgStatusD(t *testing.T) {
	// distroless: one file per package, no Status field.
	db := "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nSource: tzdata\nDescription: time zone data\n"
	ps, err := ParseDpkg([]byte(db), DpkgStatusDDir+"/tzdata")
	if err != nil || len(ps) != 1 || ps[0].Name != "tzdata" || ps[0].Arch != "all" {
		t.Fatalf("got %+v, %v", ps, err)
	}
}

func TestParseDpkgErrors(t *testing.T) {
	for name, db := range map[string]string{
		"not a field":   "Package: a\nthis is not a field\n",
		"no version":    "Package: a\nStatus: install ok installed\n",
		"no package":    "Version: 1\n",
		"continuation?": "Package a\n",
	} {
		if _, err := ParseDpkg([]byte(db), DpkgStatus); err == nil || !strings.Contains(err.Error(), DpkgStatus) {
			t.Errorf("%s: err = %v, want an error naming the database", name, err)
		}
	}
}
