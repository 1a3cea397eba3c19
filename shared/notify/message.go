package notify

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity says how urgent a message is.
type Severity string

// Severities, from least to most urgent.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Limits on a message, applied when it is sent: longer text is cut and
// marked with "…", fields past MaxFields are left out, and a link that is
// not a plain http(s) URL is dropped. They are Slack's Block Kit limits,
// within Telegram's 4,096 characters for the whole message.
const (
	MaxTitle      = 150 // a Slack header block
	MaxText       = 2000
	MaxFields     = 10 // a Slack section's fields
	MaxFieldName  = 50
	MaxFieldValue = 200
	MaxLink       = 2000
	MaxActions    = 5 // buttons of a message
	MaxActionText = 75
	MaxRef        = 64
)

// Message is one notification: what happened, to whom, and how urgent it
// is. Channels render it in their own way (Slack blocks, a Telegram text,
// a webhook's JSON body).
type Message struct {
	// Event is the audit code of what happened, e.g. "budget.alert" or
	// "watchdog.paused". Webhooks carry it for receivers to route on.
	Event string
	// Title is one line, e.g. "Session d97e2169 paused".
	Title string
	// Text says what happened and what to do, in plain text.
	Text string
	// Fields are name/value facts: project, agent, session, budget,
	// threshold, …
	Fields []Field
	// Severity defaults to Info.
	Severity Severity
	// Link, if set, points at the dashboard page of the event.
	Link string
	// Time is when it happened; the notifier's clock when zero.
	Time time.Time
	// Actions are buttons, on channels that have them (Slack): a click is
	// sent to the Slack app's interactivity endpoint with the action's ID
	// and value.
	Actions []Action `json:",omitempty"`
	// Ref, if set, is what the message is about (an approval's ID): each
	// Slack message posted with it is reported to Config.OnPosted, so that
	// it can be updated later.
	Ref string `json:",omitempty"`
}

// Action is a button of a message.
type Action struct {
	ID    string `json:"id"`    // what the button does, e.g. "approve"
	Label string `json:"label"` // what it says
	Value string `json:"value"` // what it acts on, e.g. an approval ID
	// Style is "primary", "danger" or "".
	Style string `json:"style,omitempty"`
}

// Field is one fact of a message.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// clean returns m within the limits, with defaults filled in.
func (m Message) clean(now time.Time) Message {
	out := Message{
		Event: cut(m.Event, 100), Title: cut(m.Title, MaxTitle), Text: cut(m.Text, MaxText),
		Severity: m.Severity, Time: m.Time,
	}
	if len(m.Ref) <= MaxRef {
		out.Ref = m.Ref
	}
	if out.Severity != Warning && out.Severity != Critical {
		out.Severity = Info
	}
	if out.Time.IsZero() {
		out.Time = now
	}
	out.Time = out.Time.UTC()
	if out.Title == "" {
		out.Title = "Warden"
	}
	for _, f := range m.Fields {
		if len(out.Fields) == MaxFields {
			break
		}
		if f.Name == "" && f.Value == "" {
			continue
		}
		out.Fields = append(out.Fields, Field{Name: cut(f.Name, MaxFieldName), Value: cut(f.Value, MaxFieldValue)})
	}
	if validLink(m.Link) {
		out.Link = m.Link
	}
	for _, a := range m.Actions {
		if len(out.Actions) == MaxActions {
			break
		}
		if a.ID == "" || len(a.ID) > 64 || len(a.Value) > 128 {
			continue
		}
		if a.Style != "primary" && a.Style != "danger" {
			a.Style = ""
		}
		out.Actions = append(out.Actions, Action{ID: a.ID, Label: cut(a.Label, MaxActionText), Value: a.Value, Style: a.Style})
	}
	return out
}

// cut shortens s to at most n characters, ending it with "…" when cut, and
// replaces invalid UTF-8 and control characters other than newlines.
func cut(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r != '\n' && (r < 0x20 || r == 0x7f) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// validLink accepts an absolute http(s) URL without characters that would
// break Slack's <url|text> markup.
func validLink(s string) bool {
	if s == "" || len(s) > MaxLink || strings.ContainsAny(s, "<>| \t\r\n\"") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// plain renders a message as plain text: the title, the text, one line per
// field, and the link (Telegram; the fallback text of Slack).
func (m Message) plain() string {
	var b strings.Builder
	b.WriteString(m.Title)
	if m.Text != "" {
		b.WriteString("\n\n" + m.Text)
	}
	if len(m.Fields) > 0 {
		b.WriteString("\n")
		for _, f := range m.Fields {
			b.WriteString("\n" + f.Name + ": " + f.Value)
		}
	}
	if m.Link != "" {
		b.WriteString("\n\n" + m.Link)
	}
	return b.String()
}
