package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// MaxTelegramText is the longest text Telegram's sendMessage takes.
const MaxTelegramText = 4096

// telegramTokenRE is the form of a bot token, which goes into the URL path.
var telegramTokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$`)

// telegram sends the message as plain text with sendMessage.
func (n *Notifier) telegram(ctx context.Context, d delivery) error {
	if !telegramTokenRE.MatchString(d.secret) {
		return fmt.Errorf("secret %q does not look like a Telegram bot token (123456789:AA…)", d.Channel.Secret)
	}
	body, err := json.Marshal(map[string]any{
		"chat_id": d.Channel.ChatID, "text": cut(d.msg.plain(), MaxTelegramText), "disable_web_page_preview": true,
	})
	if err != nil {
		return fmt.Errorf("telegram: encode message: %w", err)
	}
	endpoint := strings.TrimRight(n.cfg.TelegramAPIURL, "/") + "/bot" + d.secret + "/sendMessage"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return errors.New("telegram: the API URL is invalid")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		if ne := netError(err); ne != nil {
			return &retryable{err: fmt.Errorf("telegram: %w", ne)}
		}
		return &retryable{err: errors.New("telegram: request failed")}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTelegramAnswer+1))
	if err != nil {
		return &retryable{err: fmt.Errorf("telegram: read answer: %w", err)}
	}
	return telegramAnswer(resp.StatusCode, data)
}

// maxTelegramAnswer bounds the Bot API answer read; sendMessage answers
// with the message sent, well below it.
const maxTelegramAnswer = 64 << 10

// telegramAnswer reads the Bot API's answer to sendMessage:
// {"ok":true,"result":{…}} or {"ok":false,"error_code":429,
// "description":"…","parameters":{"retry_after":5}}. It returns nil when
// the message was sent, and otherwise an error that is retryable for 429
// and 5xx.
func telegramAnswer(status int, body []byte) error {
	var a struct {
		OK          bool   `json:"ok"`
		ErrorCode   int    `json:"error_code"`
		Description string `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	again := status == http.StatusTooManyRequests || status >= 500
	if len(body) > maxTelegramAnswer {
		return fmt.Errorf("telegram answered HTTP %d with more than %d bytes", status, maxTelegramAnswer)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		e := fmt.Errorf("telegram answered HTTP %d, not with the Bot API's JSON", status)
		if again {
			return &retryable{err: e}
		}
		return e
	}
	if a.OK && status == http.StatusOK {
		return nil
	}
	e := fmt.Errorf("telegram refused the message: HTTP %d: %s", status, cut(a.Description, 200))
	if again || a.ErrorCode == http.StatusTooManyRequests {
		after := time.Duration(min(max(a.Parameters.RetryAfter, 0), int(MaxRetryAfter/time.Second))) * time.Second
		return &retryable{err: e, after: after}
	}
	return e
}
