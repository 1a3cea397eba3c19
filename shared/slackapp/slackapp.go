// Package slackapp is Warden's Slack app: its interactivity endpoint, where
// Slack sends the clicks on an approval's Approve, Approve for … and Deny
// buttons (posted with the approval by the notifier).
//
// A request is taken only if Slack signed it (v0: HMAC-SHA256 of
// "v0:timestamp:body" with the app's signing secret), its timestamp is
// within five minutes, and it was not seen before (a replay of a signed
// click is refused). The clicking user decides as themselves: only an
// approver of the approval's groups — named, or a member of a named user
// group — and never the requester. The clicked message is replaced with
// the outcome, or the user is told, privately, why their click was not
// taken.
package slackapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/secret"
)

// Secrets the app reads, by name (those the stack creates on AWS).
const (
	SigningSecret = awsconfig.SlackSigningSecret
	BotToken      = awsconfig.SlackBotTokenSecret
)

// MaxBody bounds an interactivity request: the payload carries the clicked
// message, at most about 50 blocks.
const MaxBody = 1 << 20

// Replays remembers requests: FirstTime records id for window and reports
// whether it was new.
type Replays interface {
	FirstTime(ctx context.Context, id string, window time.Duration) (bool, error)
}

// replayWindow is how long a signed request is remembered: past it, its
// timestamp is too old to be taken anyway.
const replayWindow = 6 * time.Minute

// groupsTTL is how long a user group's members are trusted.
const groupsTTL = time.Minute

// Interactivity is the http.Handler of POST /v1/slack/interactivity.
type Interactivity struct {
	Approvals *approval.Service
	// Secrets holds SigningSecret and BotToken (the bot token reads user
	// groups' members: usergroups:read).
	Secrets secret.Source
	// APIURL overrides Slack's API URL (ending in "/"), for tests.
	APIURL string
	HTTP   *http.Client
	// Replays, if not nil, remembers the requests taken, for servers that
	// share them (the Lambda functions); else this process's memory does.
	Replays Replays
	Log     *slog.Logger

	mu     sync.Mutex
	seen   map[string]time.Time // signature -> when it may be forgotten
	groups map[string]cachedGroup
}

type cachedGroup struct {
	members []string
	until   time.Time
}

func (h *Interactivity) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func (h *Interactivity) client() *http.Client {
	if h.HTTP != nil {
		return h.HTTP
	}
	return http.DefaultClient
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// ServeHTTP implements http.Handler.
func (h *Interactivity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is unreadable or over %d bytes", MaxBody))
		return
	}
	signing, err := h.Secrets.Get(ctx, SigningSecret)
	if err != nil {
		h.log().Error("slack interactivity: no signing secret", "err", err)
		refuse(w, http.StatusServiceUnavailable, "the Slack app's signing secret is not set")
		return
	}
	sv, err := slack.NewSecretsVerifier(r.Header, signing)
	if errors.Is(err, slack.ErrExpiredTimestamp) {
		refuse(w, http.StatusUnauthorized, "the request's timestamp is more than five minutes away")
		return
	}
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		refuse(w, http.StatusUnauthorized, "the request is not signed by Slack with this app's signing secret")
		return
	}
	first, err := h.firstTime(ctx, r.Header.Get("X-Slack-Signature"))
	if err != nil {
		h.log().Error("slack interactivity: remember the request", "err", err)
		refuse(w, http.StatusServiceUnavailable, "Warden cannot tell whether it saw this request before")
		return
	}
	if !first {
		refuse(w, http.StatusUnauthorized, "the request was seen before (a replay)")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		refuse(w, http.StatusBadRequest, "the request is not a form")
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		refuse(w, http.StatusBadRequest, "the request has no interaction payload")
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		w.WriteHeader(http.StatusOK) // not ours to act on
		return
	}
	h.actions(ctx, cb)
	w.WriteHeader(http.StatusOK)
}

// actions acts on the first of a click's actions that is Warden's.
func (h *Interactivity) actions(ctx context.Context, cb slack.InteractionCallback) {
	for _, act := range cb.ActionCallback.BlockActions {
		if h.act(ctx, cb, act) {
			return
		}
	}
}

// firstTime records a request's identity and reports whether it is new.
func (h *Interactivity) firstTime(ctx context.Context, id string) (bool, error) {
	if h.Replays != nil {
		return h.Replays.FirstTime(ctx, id, replayWindow)
	}
	return h.firstTimeHere(id), nil
}

func (h *Interactivity) firstTimeHere(sig string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.seen == nil {
		h.seen = map[string]time.Time{}
	}
	for s, until := range h.seen {
		if now.After(until) {
			delete(h.seen, s)
		}
	}
	if _, ok := h.seen[sig]; ok {
		return false
	}
	h.seen[sig] = now.Add(replayWindow)
	return true
}

// act decides on one click; it reports whether the click was one of
// Warden's buttons.
func (h *Interactivity) act(ctx context.Context, cb slack.InteractionCallback, act *slack.BlockAction) bool {
	d := approval.Decision{By: cb.User.ID, Via: "slack"}
	if cb.Channel.ID != "" {
		d.Via += " channel " + cb.Channel.ID
	}
	switch act.ActionID {
	case approval.ActionApprove:
		d.Approve = true
	case approval.ActionDeny:
	case approval.ActionApproveFor:
		d.Approve = true
	default:
		return false
	}
	id := act.Value
	if !approval.ValidID(id) {
		h.reply(ctx, cb, false, "That button names no Warden approval.")
		return true
	}
	a, err := h.Approvals.Store.Get(ctx, id)
	if err != nil {
		h.reply(ctx, cb, false, "Warden cannot find approval "+id+".")
		return true
	}
	if act.ActionID == approval.ActionApproveFor {
		d.For = approval.GrantFor(a)
	}
	d.Groups = h.groupsOf(ctx, cb.User.ID, a.Approvers)
	a, err = h.Approvals.Decide(ctx, id, d)
	switch {
	case errors.Is(err, approval.ErrNotApprover):
		h.reply(ctx, cb, false, "You are not among the approvers of "+id+", or you asked for it: your click was not taken.")
	case errors.Is(err, approval.ErrDecided):
		h.reply(ctx, cb, false, "Approval "+id+" is no longer pending: "+strings.TrimPrefix(err.Error(), "approval "+id+": "))
	case err != nil:
		h.log().Error("slack: decide approval", "approval", id, "err", err)
		h.reply(ctx, cb, false, "Warden could not record your decision on "+id+"; try again.")
	default:
		h.reply(ctx, cb, true, Outcome(a))
	}
	return true
}

// Outcome is the line that replaces an approval's buttons once decided.
func Outcome(a approval.Approval) string {
	who := strings.TrimPrefix(a.DecidedBy, "admin:")
	if !strings.HasPrefix(a.DecidedBy, "admin:") {
		who = "<@" + who + ">"
	}
	switch {
	case a.State == approval.Approved && a.Reusable:
		return fmt.Sprintf(":white_check_mark: Approved by %s until %s", who, a.GrantUntil.Format("15:04 MST"))
	case a.State == approval.Approved:
		return fmt.Sprintf(":white_check_mark: Approved once by %s", who)
	case a.State == approval.Denied:
		return fmt.Sprintf(":no_entry: Denied by %s", who)
	}
	return ":hourglass: " + string(a.State)
}

// groupsOf are the user groups among approvers that user is a member of.
// A group that cannot be read counts as not theirs.
func (h *Interactivity) groupsOf(ctx context.Context, user string, approvers []string) []string {
	var out []string
	for _, g := range approvers {
		if !strings.HasPrefix(g, "S") {
			continue
		}
		members, err := h.members(ctx, g)
		if err != nil {
			h.log().Error("slack: read a user group", "group", g, "err", err)
			continue
		}
		for _, m := range members {
			if m == user {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func (h *Interactivity) members(ctx context.Context, group string) ([]string, error) {
	h.mu.Lock()
	c, ok := h.groups[group]
	h.mu.Unlock()
	if ok && time.Now().Before(c.until) {
		return c.members, nil
	}
	token, err := h.Secrets.Get(ctx, BotToken)
	if err != nil {
		return nil, err
	}
	opts := []slack.Option{slack.OptionHTTPClient(h.client())}
	if h.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(h.APIURL))
	}
	members, err := slack.New(token, opts...).GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.groups == nil {
		h.groups = map[string]cachedGroup{}
	}
	h.groups[group] = cachedGroup{members: members, until: time.Now().Add(groupsTTL)}
	return members, nil
}

// reply answers the click through its response URL: the message replaced
// (its buttons gone, the outcome added), or a note only the user sees.
func (h *Interactivity) reply(ctx context.Context, cb slack.InteractionCallback, replace bool, text string) {
	if cb.ResponseURL == "" {
		return
	}
	msg := &slack.WebhookMessage{Text: text, ResponseType: slack.ResponseTypeEphemeral}
	if replace {
		msg = &slack.WebhookMessage{ReplaceOriginal: true, Text: text, Blocks: &slack.Blocks{BlockSet: decidedBlocks(cb.Message, text)}}
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, cb.ResponseURL, h.client(), msg); err != nil {
		h.log().Error("slack: answer a click", "err", err)
	}
}

// decidedBlocks are the clicked message's blocks without its buttons, and
// the outcome.
func decidedBlocks(m slack.Message, outcome string) []slack.Block {
	var out []slack.Block
	for _, b := range m.Blocks.BlockSet {
		if b.BlockType() == slack.MBTAction {
			continue
		}
		out = append(out, b)
	}
	return append(out, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, outcome, false, false), nil, nil))
}
