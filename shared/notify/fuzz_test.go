package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzTelegramAnswer feeds arbitrary Bot API answers to the parser: it
// must not panic, must accept only ok:true with 200, and must never hand
// back more of the answer than its cut description.
func FuzzTelegramAnswer(f *testing.F) {
	f.Add(200, []byte(`{"ok":true,"result":{"message_id":7}}`))
	f.Add(400, []byte(`{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`))
	f.Add(429, []byte(`{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":99999999999}}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Add(200, []byte(`{"ok":false}`))
	f.Add(200, []byte(`{"ok":"yes"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := telegramAnswer(status, body)
		if err == nil {
			if status != 200 {
				t.Fatalf("HTTP %d accepted", status)
			}
			return
		}
		if len(err.Error()) > 400 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
		if r, ok := err.(*retryable); ok && (r.after < 0 || r.after > MaxRetryAfter) {
			t.Fatalf("retry after %s", r.after)
		}
	})
}

// FuzzVerify feeds arbitrary signature and timestamp headers to Verify: it
// must not panic, and must accept only what Sign produced.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_772_366_400, 0)
	f.Add("1772366400", Sign("k", "1772366400", []byte("{}")), []byte("{}"))
	f.Add("1772366400", "sha256=zz", []byte("{}"))
	f.Add("-1", "", []byte(nil))
	f.Add("9223372036854775807", "sha256="+strings.Repeat("0", 64), []byte("x"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		err := Verify("k", ts, sig, body, now, 5*time.Minute)
		// Hex digits may come in either case: the same MAC.
		if err == nil && !strings.EqualFold(sig, Sign("k", ts, body)) {
			t.Fatalf("accepted %q for %q", sig, ts)
		}
	})
}

// FuzzClean checks that any message comes out within the limits, as valid
// UTF-8 without control characters other than newlines.
func FuzzClean(f *testing.F) {
	f.Add("Session d97e2169 paused", "text\nmore", "session", "d97e2169", "https://w.example/s")
	f.Add(strings.Repeat("é", 200), "\xff\x00\x1b", "", "", "javascript:x")
	f.Fuzz(func(t *testing.T, title, text, name, value, link string) {
		m := Message{Title: title, Text: text, Fields: []Field{{name, value}}, Link: link}.clean(time.Unix(0, 0))
		for _, s := range []struct {
			v   string
			max int
		}{{m.Title, MaxTitle}, {m.Text, MaxText}} {
			if !utf8.ValidString(s.v) || utf8.RuneCountInString(s.v) > s.max {
				t.Fatalf("%q out of limits", s.v)
			}
			for _, r := range s.v {
				if r != '\n' && (r < 0x20 || r == 0x7f) {
					t.Fatalf("control character in %q", s.v)
				}
			}
		}
		if m.Link != "" && !validLink(m.Link) {
			t.Fatalf("link %q", m.Link)
		}
		if len(SlackBlocks(m)) < 2 {
			t.Fatal("no blocks")
		}
	})
}

// FuzzParseEnvelope feeds arbitrary outbox items to the notifier's parser:
// it must not panic, and what it accepts is within the limits and reads
// back the same after encoding.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"A","message":{"Event":"budget.alert","Title":"t","Time":"2026-03-01T12:00:00Z"},"to":[{"name":"hook","channel":{"Type":"webhook","URL":"https://example.com/h"}}]}`))
	f.Add([]byte(`{"id":"B","message":{"Title":"` + strings.Repeat("é", 300) + `","Fields":[{"name":"a\u0000","value":"b"}]},"to":[{"name":"s","channel":{"Type":"slack"}}]}`))
	f.Add([]byte(`{"id":"","to":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		m := e.Message
		if e.ID == "" || len(e.To) == 0 || len(e.To) > MaxTargets || utf8.RuneCountInString(m.Title) > MaxTitle ||
			utf8.RuneCountInString(m.Text) > MaxText || len(m.Fields) > MaxFields || !utf8.ValidString(m.Title+m.Text) {
			t.Fatalf("accepted %+v", e)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ParseEnvelope(again)
		if err != nil || fmt.Sprint(e2) != fmt.Sprint(e) {
			t.Fatalf("re-parse: %v\n%+v\n%+v", err, e2, e)
		}
	})
}
