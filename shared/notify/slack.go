package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/slack-go/slack"
)

// slack posts the message with chat.postMessage, as Block Kit blocks with
// a plain-text fallback for notifications and old clients; to a target
// with a TS, it replaces that message with chat.update. A message with a
// Ref, once posted, is reported to Config.OnPosted.
func (n *Notifier) slack(ctx context.Context, d delivery) error {
	opts := []slack.Option{slack.OptionHTTPClient(n.client)}
	if n.cfg.SlackAPIURL != "" {
		opts = append(opts, slack.OptionAPIURL(n.cfg.SlackAPIURL))
	}
	api := slack.New(d.secret, opts...)
	msg := []slack.MsgOption{
		slack.MsgOptionText(slackFallback(d.msg), false),
		slack.MsgOptionBlocks(SlackBlocks(d.msg)...),
	}
	var err error
	if d.TS != "" {
		_, _, _, err = api.UpdateMessageContext(ctx, d.Channel.Channel, d.TS, msg...)
	} else {
		var channel, ts string
		channel, ts, err = api.PostMessageContext(ctx, d.Channel.Channel, append(msg, slack.MsgOptionDisableLinkUnfurl())...)
		if err == nil && d.msg.Ref != "" && n.cfg.OnPosted != nil {
			posted := d.Target
			posted.Channel.Channel, posted.TS = channel, ts
			n.cfg.OnPosted(ctx, d.msg.Ref, posted)
		}
	}
	if err == nil {
		return nil
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return &retryable{err: errors.New("slack: rate limited"), after: rl.RetryAfter}
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok {
		e := fmt.Errorf("slack answered HTTP %d", sc.Code)
		if sc.Code == http.StatusTooManyRequests || sc.Code >= 500 {
			return &retryable{err: e}
		}
		return e
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return fmt.Errorf("slack refused the message: %s", cut(se.Err, 100))
	}
	if ne := netError(err); ne != nil {
		return &retryable{err: fmt.Errorf("slack: %w", ne)}
	}
	return fmt.Errorf("slack: %w", err)
}

// slackFallback is the text of the notification a Slack client shows.
func slackFallback(m Message) string {
	if m.Text == "" {
		return m.Title
	}
	return cut(m.Title+": "+m.Text, 300)
}

// SlackBlocks renders a message as Block Kit blocks: a header with the
// title, a section with the text and the fields, a context line with the
// severity and the link, and the buttons.
func SlackBlocks(m Message) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, m.Title, true, false)),
	}
	var text *slack.TextBlockObject
	if m.Text != "" {
		text = slack.NewTextBlockObject(slack.MarkdownType, slackEscape(m.Text), false, true)
	}
	var fields []*slack.TextBlockObject
	for _, f := range m.Fields {
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
			"*"+slackEscape(f.Name)+"*\n"+slackEscape(f.Value), false, true))
	}
	if text != nil || fields != nil {
		blocks = append(blocks, slack.NewSectionBlock(text, fields, nil))
	}
	ctx := severityIcon(m.Severity) + " " + string(m.Severity)
	if m.Event != "" {
		ctx += " · `" + slackEscape(strings.ReplaceAll(m.Event, "`", "'")) + "`"
	}
	if m.Link != "" {
		ctx += " · <" + m.Link + "|Open in Warden>"
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, true)))
	if len(m.Actions) > 0 {
		var buttons []slack.BlockElement
		for _, a := range m.Actions {
			b := slack.NewButtonBlockElement(a.ID, a.Value, slack.NewTextBlockObject(slack.PlainTextType, a.Label, false, false))
			b.Style = slack.Style(a.Style)
			buttons = append(buttons, b)
		}
		blocks = append(blocks, slack.NewActionBlock(ActionsBlockID, buttons...))
	}
	return blocks
}

// ActionsBlockID is the block ID of a message's buttons.
const ActionsBlockID = "warden_actions"

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control characters, so that text cannot form links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func severityIcon(s Severity) string {
	switch s {
	case Critical:
		return ":red_circle:"
	case Warning:
		return ":warning:"
	}
	return ":information_source:"
}
