package gitproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const (
	a = "1111111111111111111111111111111111111111"
	b = "2222222222222222222222222222222222222222"
)

// TestReadPush: the commands of a push as git sends them — shallow lines,
// capabilities on the first command, push options — and the reader left
// at the pack, with the section kept byte for byte.
func TestReadPush(t *testing.T) {
	t.Parallel()
	section := pkt("shallow "+a+"\n") + pkt(a+" "+b+" refs/heads/feature/x\x00report-status side-band-64k push-options object-format=sha1 agent=git/2.39.5\n") +
		pkt(ZeroID+" "+b+" refs/heads/new\n") + pkt(a+" "+ZeroID+" refs/tags/v1\n") + "0000" + pkt("ci.skip\n") + "0000"
	body := section + "PACK\x00\x00\x00\x02rest-of-the-pack"
	r := strings.NewReader(body)
	p, err := ReadPush(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []Command{{a, b, "refs/heads/feature/x"}, {ZeroID, b, "refs/heads/new"}, {a, ZeroID, "refs/tags/v1"}}
	if fmt.Sprint(p.Commands) != fmt.Sprint(want) {
		t.Errorf("commands %v, want %v", p.Commands, want)
	}
	if ops := []string{p.Commands[0].Op(), p.Commands[1].Op(), p.Commands[2].Op()}; fmt.Sprint(ops) != "[update create delete]" {
		t.Errorf("ops %v", ops)
	}
	if !p.HasCapability("side-band-64k") || !p.HasCapability("object-format") || p.HasCapability("atomic") {
		t.Errorf("capabilities %v", p.Capabilities)
	}
	if fmt.Sprint(p.PushOptions) != "[ci.skip]" {
		t.Errorf("push options %v", p.PushOptions)
	}
	if string(p.Raw) != section {
		t.Errorf("raw %q, want %q", p.Raw, section)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "PACK\x00\x00\x00\x02rest-of-the-pack" {
		t.Errorf("left at %q, want the pack", rest)
	}
}

// TestReadPushRefuses: malformed and oversized input is refused with
// ErrMalformed, never read past its limits.
func TestReadPushRefuses(t *testing.T) {
	t.Parallel()
	many := strings.Repeat(pkt(a+" "+b+" refs/heads/x\n"), MaxCommands+1) + "0000"
	for name, body := range map[string]string{
		"empty":               "",
		"no flush":            pkt(a + " " + b + " refs/heads/x\n"),
		"truncated header":    "00",
		"truncated packet":    "0040" + a,
		"bad length":          "zzzz",
		"length 3":            "0003",
		"two ids only":        pkt(a+" "+b+"\n") + "0000",
		"short id":            pkt("1234 "+b+" refs/heads/x\n") + "0000",
		"upper-case id":       pkt(strings.ToUpper("abcdef0123456789abcdef0123456789abcdef01")+" "+b+" refs/heads/x\n") + "0000",
		"not under refs":      pkt(a+" "+b+" HEAD\n") + "0000",
		"dot dot":             pkt(a+" "+b+" refs/heads/../x\n") + "0000",
		"lock":                pkt(a+" "+b+" refs/heads/x.lock\n") + "0000",
		"space in ref":        pkt(a+" "+b+" refs/heads/a b\n") + "0000",
		"zero to zero":        pkt(ZeroID+" "+ZeroID+" refs/heads/x\n") + "0000",
		"late capabilities":   pkt(a+" "+b+" refs/heads/x\n") + pkt(a+" "+b+" refs/heads/y\x00atomic\n") + "0000",
		"delim":               pkt(a+" "+b+" refs/heads/x\n") + "0001",
		"too many":            many,
		"options without end": pkt(a+" "+b+" refs/heads/x\x00push-options\n") + "0000" + pkt("o\n"),
		"too large":           strings.Repeat(pkt(strings.Repeat("x", 60000)), 20),
	} {
		if _, err := ReadPush(strings.NewReader(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzReadPush: whatever a client sends, the reader refuses it or returns
// valid commands and keeps exactly the bytes it read.
func FuzzReadPush(f *testing.F) {
	f.Add([]byte(pkt(a+" "+b+" refs/heads/main\x00report-status side-band-64k\n") + "0000PACK"))
	f.Add([]byte(pkt("shallow "+a+"\n") + pkt(ZeroID+" "+b+" refs/heads/x\x00push-options\n") + "0000" + pkt("o\n") + "0000"))
	f.Add([]byte("0000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPush(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(p.Commands) > MaxCommands || !bytes.HasPrefix(data, p.Raw) || len(p.Raw) > MaxCommandBytes {
			t.Fatalf("push %+v from %q", p, data)
		}
		for _, c := range p.Commands {
			if !validID(c.Old) || !validID(c.New) || !validRef(c.Ref) {
				t.Fatalf("command %+v", c)
			}
		}
	})
}

// TestReadPushProbe: git's probe before a large push is a lone flush: a
// push of no command.
func TestReadPushProbe(t *testing.T) {
	t.Parallel()
	p, err := ReadPush(strings.NewReader("0000"))
	if err != nil || len(p.Commands) != 0 || string(p.Raw) != "0000" {
		t.Errorf("probe: %+v, %v", p, err)
	}
}
