// Package channel is the declaration of a notification channel in a
// policy, apart from the policy engine so that what only sends
// notifications (shared/notify, the notifier function) does not link it.
package channel

// Decl is a notification channel. Credentials are never written here:
// secret names a secret in the deployment's secret store or environment.
type Decl struct {
	Type    string `policy:"type,required" enum:"slack,telegram,webhook" doc:"The kind of channel."`
	Channel string `policy:"channel" doc:"Slack channel ID (C…, G…)."`
	ChatID  string `policy:"chat_id" doc:"Telegram chat ID."`
	URL     string `policy:"url" doc:"Webhook URL (https)."`
	Secret  string `policy:"secret" doc:"Name of the secret holding the channel's token (never the token itself)."`
}
