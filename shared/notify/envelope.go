package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wardenhq/warden/policy/channel"
)

// MaxEnvelope bounds an encoded Envelope: a cleaned message is at most
// about 6 KiB, and a policy declares few channels.
const MaxEnvelope = 64 << 10

// MaxTargets bounds the channels one message is addressed to.
const MaxTargets = 20

// Target is a channel a message is addressed to, as the policy in force
// declared it then.
type Target struct {
	Name    string       `json:"name"`
	Channel channel.Decl `json:"channel"`
	// TS, if set, is the Slack message (its timestamp, in Channel.Channel)
	// that the message replaces, instead of being posted anew.
	TS string `json:"ts,omitempty"`
}

// MaxTS bounds a Target's TS: Slack's are "1772366400.000100".
const MaxTS = 32

// Envelope is a message addressed to its channels: what Address makes of
// a message and a list of channel names, and what an outbox stores for a
// notifier elsewhere to Deliver (on AWS the api and llm functions put it
// in the outbox table; the notifier function sends it).
type Envelope struct {
	// ID identifies the message. A delivery's ID (a webhook's
	// X-Warden-Delivery) is ID + "." + the channel's name: the same on
	// every try, and on a redelivery of the envelope.
	ID      string   `json:"id"`
	Message Message  `json:"message"`
	To      []Target `json:"to"`
}

// Address looks the channel names up in the channels of the policy in
// force and returns m, within its limits and stamped with now if it has no
// time, addressed to them. Any unknown name fails the whole call, so
// nothing is sent to some channels of a list that was meant for others.
func Address(src Channels, to []string, m Message, now time.Time) (Envelope, error) {
	var (
		channels map[string]channel.Decl
		loaded   bool
	)
	if src != nil {
		channels, loaded = src.Channels()
	}
	if !loaded {
		return Envelope{}, errors.New("notify: no policy is loaded, so no notification channel is known")
	}
	if len(to) > MaxTargets {
		return Envelope{}, fmt.Errorf("notify: %d channels, more than %d", len(to), MaxTargets)
	}
	targets := make([]Target, 0, len(to))
	for _, name := range to {
		ch, ok := channels[name]
		if !ok {
			return Envelope{}, fmt.Errorf("notify: unknown notification channel %q: the policy declares no such channel under notifications:", name)
		}
		targets = append(targets, Target{Name: name, Channel: ch})
	}
	return EnvelopeTo(targets, m, now), nil
}

// EnvelopeTo returns m, within its limits and stamped with now if it has
// no time, addressed to targets already resolved (messages to replace).
func EnvelopeTo(to []Target, m Message, now time.Time) Envelope {
	return Envelope{ID: rand.Text(), Message: m.clean(now), To: to}
}

// jobs are the envelope's deliveries, one per channel.
func (e Envelope) jobs() []job {
	jobs := make([]job, len(e.To))
	for i, t := range e.To {
		jobs[i] = job{Target: t, msg: e.Message, id: e.ID + "." + t.Name}
	}
	return jobs
}

// ParseEnvelope decodes an envelope an outbox stored, checking it as
// input from outside: its size, known fields only, an ID, one channel or
// more, each named, and the message within its limits. A channel of an
// unknown type fails at its delivery.
func ParseEnvelope(data []byte) (Envelope, error) {
	if len(data) > MaxEnvelope {
		return Envelope{}, fmt.Errorf("notification envelope: %d bytes, more than %d", len(data), MaxEnvelope)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("notification envelope: %w", err)
	}
	if dec.More() {
		return Envelope{}, errors.New("notification envelope: data after the JSON object")
	}
	switch {
	case e.ID == "" || len(e.ID) > 64:
		return Envelope{}, errors.New("notification envelope: no ID, or one longer than 64 bytes")
	case len(e.To) == 0 || len(e.To) > MaxTargets:
		return Envelope{}, fmt.Errorf("notification envelope %s: %d channels, not 1 to %d", e.ID, len(e.To), MaxTargets)
	}
	if slices.ContainsFunc(e.To, func(t Target) bool { return t.Name == "" }) {
		return Envelope{}, fmt.Errorf("notification envelope %s: a channel without a name", e.ID)
	}
	if slices.ContainsFunc(e.To, func(t Target) bool { return len(t.TS) > MaxTS }) {
		return Envelope{}, fmt.Errorf("notification envelope %s: a message timestamp longer than %d bytes", e.ID, MaxTS)
	}
	e.Message = e.Message.clean(e.Message.Time)
	return e, nil
}
