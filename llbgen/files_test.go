package llbgen

import (
	"context"
	"strconv"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

func TestFiles(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	ctxState := llb.Local("context")
	o.Context = &ctxState
	cfg := parseFile(t, "testdata/files.yml")
	sm := llb.NewSourceMap(nil, "testdata/files.yml", "yaml", []byte("x"))
	o.SourceMaps = map[string]*llb.SourceMap{"testdata/files.yml": sm}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	def, err := res.Output.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mkfile, mkdir, symlink, cp []string
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		for _, a := range op.GetFile().GetActions() {
			switch {
			case a.GetMkfile() != nil:
				f := a.GetMkfile()
				mkfile = append(mkfile, f.GetPath()+"|"+octal(f.GetMode())+"|"+string(f.GetData()))
			case a.GetMkdir() != nil:
				d := a.GetMkdir()
				mkdir = append(mkdir, d.GetPath()+"|"+octal(d.GetMode())+"|"+uid(d.GetOwner()))
			case a.GetSymlink() != nil:
				symlink = append(symlink, a.GetSymlink().GetNewpath()+"->"+a.GetSymlink().GetOldpath())
			case a.GetCopy() != nil:
				c := a.GetCopy()
				cp = append(cp, c.GetSrc()+"|"+c.GetDest()+"|"+octal(c.GetMode())+"|"+uid(c.GetOwner()))
			}
		}
	}
	has := func(list []string, want string) bool {
		for _, x := range list {
			if x == want {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"/etc/motd|644|hello\n"} {
		if !has(mkfile, want) {
			t.Errorf("no mkfile %q in %q", want, mkfile)
		}
	}
	// var/lib/app is owned by the container "app" (the first one: uid 100);
	// missing parents get the entry mode plus x where r or w is set (0700 for a directory, 0755 for 0644, 0750 for 0640).
	for _, want := range []string{"/var/lib/app|700|100:0", "/var/lib|700|100:0", "/etc|755|0:0", "/etc|750|0:7"} {
		if !has(mkdir, want) {
			t.Errorf("no mkdir %q in %q", want, mkdir)
		}
	}
	if !has(symlink, "/etc/localtime->/usr/share/zoneinfo/UTC") {
		t.Errorf("symlinks %q", symlink)
	}
	// optional sources become a one-name wildcard that may match nothing
	if !has(cp, "/conf/[a]pp.conf|/etc/app.conf|640|0:7") {
		t.Errorf("copies %q", cp)
	}
	// every files op carries its YAML position
	if len(def.Source.GetLocations()) == 0 {
		t.Error("no source locations in the definition")
	}
}

func octal(m int32) string { return strconv.FormatInt(int64(m), 8) }

func uid(o *pb.ChownOpt) string {
	var u, g int64
	if o.GetUser() != nil {
		u = int64(o.GetUser().GetByID())
	}
	if o.GetGroup() != nil {
		g = int64(o.GetGroup().GetByID())
	}
	return strconv.FormatInt(u, 10) + ":" + strconv.FormatInt(g, 10)
}
