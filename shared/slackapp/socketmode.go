package slackapp

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// AppToken is the secret that holds the Slack app's app-level token
// (xapp-…, connections:write), for Socket Mode.
const AppToken = "slack-app-token"

// RunSocketMode takes the clicks over Slack's Socket Mode until ctx ends:
// a websocket the server opens to Slack, so that no public URL is needed
// (the local server). Slack authenticates the connection by the app-level
// token, so there is no signature to check; each request is taken once
// (by its envelope ID) and acknowledged.
func (h *Interactivity) RunSocketMode(ctx context.Context) error {
	appToken, err := h.Secrets.Get(ctx, AppToken)
	if err != nil {
		return fmt.Errorf("slack socket mode: %w", err)
	}
	bot, err := h.Secrets.Get(ctx, BotToken)
	if err != nil {
		return fmt.Errorf("slack socket mode: %w", err)
	}
	opts := []slack.Option{slack.OptionHTTPClient(h.client()), slack.OptionAppLevelToken(appToken)}
	if h.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(h.APIURL))
	}
	client := socketmode.New(slack.New(bot, opts...))
	done := make(chan error, 1)
	go func() { done <- client.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-client.Events:
			if evt.Type != socketmode.EventTypeInteractive || evt.Request == nil {
				continue
			}
			if err := client.Ack(*evt.Request); err != nil && !errors.Is(err, context.Canceled) {
				h.log().Error("slack socket mode: acknowledge", "err", err)
			}
			cb, ok := evt.Data.(slack.InteractionCallback)
			if !ok || cb.Type != slack.InteractionTypeBlockActions {
				continue
			}
			if first, err := h.firstTime(ctx, "envelope:"+evt.Request.EnvelopeID); err != nil || !first {
				continue
			}
			h.actions(ctx, cb)
		}
	}
}
