// Package notify sends Warden's notifications — budget alerts, watchdog
// trips, approval requests — to the channels a policy declares under
// notifications: (Slack, Telegram, webhooks).
//
// A Notifier looks channels up by name in the policy in force and their
// credentials up in a Secrets store: the policy names a secret
// (secret: slack-bot-token), never holds it. The local server reads
// secrets from the environment (EnvSecrets: WARDEN_SECRET_SLACK_BOT_TOKEN).
//
//   - slack: chat.postMessage to the channel ID, with the bot token from
//     the secret, as Block Kit blocks (a header, a section with the text
//     and the fields, a context line with the severity and the link) and a
//     plain-text fallback.
//   - telegram: sendMessage to chat_id, with the bot token from the secret,
//     as plain text.
//   - webhook: a JSON POST to the URL (https; http only to 127.0.0.1 or
//     localhost). When the channel names a secret, the body is signed:
//     X-Warden-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." +
//     body)) with the timestamp (Unix seconds) in X-Warden-Timestamp; see
//     Sign and Verify. X-Warden-Delivery is the same on every retry of one
//     delivery, so a receiver can drop duplicates.
//
// Every attempt is bounded by Config.Timeout (5 s). Network errors, 429
// and 5xx answers are retried with doubling backoff up to Config.Attempts
// (3) tries; other refusals are not. Errors name the channel and never
// hold a token, a signing key or a webhook URL (which may embed one).
//
// Enqueue never blocks the request path: it puts the message in a bounded
// queue that Config.Workers goroutines send from, and drops it, counting
// and logging the drop, when the queue is full. Close drains the queue.
// Send delivers synchronously, for callers that wait (a Lambda task).
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/policy/channel"
)

// Channels gives the notification channels of the policy in force, by
// name; false when no policy is loaded. A *policy.Policy is one, and so is
// the policy source of the server and the functions.
type Channels interface {
	Channels() (map[string]channel.Decl, bool)
}

// Errors of Enqueue.
var (
	ErrQueueFull = errors.New("notification queue full")
	ErrClosed    = errors.New("notifier closed")
)

// Defaults of Config.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultAttempts  = 3
	DefaultBackoff   = 500 * time.Millisecond
	DefaultQueueSize = 256
	DefaultWorkers   = 2
	// MaxRetryAfter caps how long a Retry-After answer makes a delivery wait.
	MaxRetryAfter = 30 * time.Second
	// DefaultTelegramAPIURL is Telegram's Bot API.
	DefaultTelegramAPIURL = "https://api.telegram.org"
)

// Config configures a Notifier. Secrets is required; without Channels,
// Send and Enqueue refuse (no policy is loaded).
type Config struct {
	// Channels are the policy's notification channels, which Send and
	// Enqueue address messages to by name.
	Channels Channels
	// Secrets resolves a channel's secret: name to its value.
	Secrets Secrets
	// HTTPClient sends the requests; it must not follow redirects to
	// other hosts. Default: a client that follows none.
	HTTPClient *http.Client
	// Timeout bounds one attempt. Default 5s.
	Timeout time.Duration
	// Attempts bounds the tries of one delivery. Default 3.
	Attempts int
	// Backoff is the wait before the second try; it doubles after each.
	// Default 500ms.
	Backoff time.Duration
	// QueueSize bounds the messages waiting to be sent. Default 256.
	QueueSize int
	// Workers is how many deliveries run at once. Default 2.
	Workers int
	// SlackAPIURL overrides Slack's API URL (ending in "/"), for tests.
	SlackAPIURL string
	// TelegramAPIURL overrides DefaultTelegramAPIURL, for tests.
	TelegramAPIURL string
	// Log receives drops and failed deliveries; slog.Default when nil.
	Log *slog.Logger
	// Now stamps messages without a Time and webhook timestamps;
	// time.Now when nil.
	Now func() time.Time
	// OnPosted, if not nil, is told each Slack message posted for a
	// message with a Ref: the target with the channel Slack answered and
	// the message's TS, which a later envelope can replace it through. It
	// runs on the delivering goroutine.
	OnPosted func(ctx context.Context, ref string, posted Target)
}

// Stats counts deliveries, one per message and channel.
type Stats struct {
	Sent    int64 // delivered
	Failed  int64 // given up after the attempts, or refused by the channel
	Dropped int64 // not attempted: the queue was full, or Close gave up
}

// Notifier sends messages to the policy's channels. It is safe for
// concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger

	queue  chan job
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	// pending counts queued and in-flight deliveries; idle is closed when
	// it drops to zero (Flush).
	pmu     sync.Mutex
	pending int
	idle    chan struct{}

	sent, failed, dropped atomic.Int64
}

// job is one message bound for one channel, as the policy declared the
// channel when the message was addressed; id is the delivery's.
type job struct {
	Target
	msg Message
	id  string
}

// New returns a Notifier and starts its workers; Close stops them.
func New(cfg Config) (*Notifier, error) {
	if cfg.Secrets == nil {
		return nil, errors.New("new notifier: Secrets is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.TelegramAPIURL == "" {
		cfg.TelegramAPIURL = DefaultTelegramAPIURL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	n := &Notifier{cfg: cfg, client: limitedClient(client), log: cfg.Log, queue: make(chan job, cfg.QueueSize)}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.base, n.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		n.wg.Go(n.work)
	}
	return n, nil
}

// Stats returns the delivery counters.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
}

// Send delivers m to each named channel now and returns once every
// delivery succeeded or gave up; the error joins the failures. An unknown
// channel name fails the call before anything is sent.
func (n *Notifier) Send(ctx context.Context, to []string, m Message) error {
	e, err := Address(n.cfg.Channels, to, m, n.cfg.Now())
	if err != nil {
		return err
	}
	return n.Deliver(ctx, e)
}

// Deliver sends an addressed message to each of its channels now and
// returns once every delivery succeeded or gave up; the error joins the
// failures. The notifier function delivers what the outbox holds.
func (n *Notifier) Deliver(ctx context.Context, e Envelope) error {
	var errs []error
	for _, j := range e.jobs() {
		if err := n.deliver(ctx, j); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Enqueue queues m for each named channel and returns at once. An unknown
// channel name fails the call before anything is queued. A message that
// finds the queue full is dropped, counted and logged, and the error
// wraps ErrQueueFull; after Close the error is ErrClosed.
func (n *Notifier) Enqueue(to []string, m Message) error {
	e, err := Address(n.cfg.Channels, to, m, n.cfg.Now())
	if err != nil {
		return err
	}
	return n.Queue(e)
}

// Queue queues an addressed message for each of its channels and returns
// at once; a full queue and Close are as for Enqueue.
func (n *Notifier) Queue(e Envelope) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	var dropped []string
	for _, j := range e.jobs() {
		n.begin()
		select {
		case n.queue <- j:
		default:
			n.end()
			dropped = append(dropped, j.Name)
			total := n.dropped.Add(1)
			n.log.Warn("notification dropped: queue full", "channel", j.Name, "event", e.Message.Event, "title", e.Message.Title, "dropped", total)
		}
	}
	if dropped != nil {
		return fmt.Errorf("notify %q: %w", dropped, ErrQueueFull)
	}
	return nil
}

// Close stops taking messages and waits until the queued ones are sent.
// When ctx ends first, deliveries in flight are abandoned, what is left
// in the queue is counted as dropped, and the error says how many.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
	}
	before := n.dropped.Load() + n.failed.Load()
	n.cancel()
	<-done
	lost := n.dropped.Load() + n.failed.Load() - before
	return fmt.Errorf("close notifier: %d notifications not sent: %w", lost, ctx.Err())
}

func (n *Notifier) work() {
	for j := range n.queue {
		if n.base.Err() != nil {
			n.dropped.Add(1)
		} else if err := n.deliver(n.base, j); err != nil {
			n.log.Error("notification not sent", "err", err, "channel", j.Name, "event", j.msg.Event)
		}
		n.end()
	}
}

// begin and end count a delivery in and out of pending.
func (n *Notifier) begin() {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	if n.pending == 0 {
		n.idle = make(chan struct{})
	}
	n.pending++
}

func (n *Notifier) end() {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	if n.pending--; n.pending == 0 {
		close(n.idle)
	}
}

// Flush waits until every message queued so far is delivered or given up,
// or ctx ends. A Lambda function calls it before its invocation returns,
// since a frozen environment sends nothing.
func (n *Notifier) Flush(ctx context.Context) error {
	n.pmu.Lock()
	idle := n.idle
	busy := n.pending > 0
	n.pmu.Unlock()
	if !busy {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush notifications: %w", ctx.Err())
	}
}

// delivery is one message on its way to one channel.
type delivery struct {
	job
	secret string
}

// retryable marks an attempt's error as worth another try, after at
// least the given wait.
type retryable struct {
	err   error
	after time.Duration
}

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// deliver sends one message to one channel, retrying what may pass on a
// later try. The error names the channel and holds no secret.
func (n *Notifier) deliver(ctx context.Context, j job) error {
	d := delivery{job: j}
	send, err := n.sender(j)
	if err == nil && j.Channel.Secret != "" {
		d.secret, err = n.secret(ctx, j.Channel.Secret)
	}
	if err == nil && j.Channel.Secret == "" && j.Channel.Type != "webhook" {
		err = errors.New("the channel has no secret: naming its bot token")
	}
	for attempt := 1; err == nil; attempt++ {
		actx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		err = send(actx, d)
		cancel()
		if err == nil {
			n.sent.Add(1)
			return nil
		}
		r, ok := errors.AsType[*retryable](err)
		if !ok || attempt >= n.cfg.Attempts || ctx.Err() != nil {
			if attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			break
		}
		wait := max(n.cfg.Backoff<<(attempt-1), min(r.after, MaxRetryAfter))
		n.log.Warn("notification attempt failed; retrying", "err", scrub(err, d.secret), "channel", j.Name, "attempt", attempt, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			err = nil
		case <-ctx.Done():
			t.Stop()
			err = fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		}
	}
	n.failed.Add(1)
	return scrub(fmt.Errorf("notify %s channel %q: %w", j.Channel.Type, j.Name, err), d.secret)
}

func (n *Notifier) secret(ctx context.Context, name string) (string, error) {
	v, err := n.cfg.Secrets.Get(ctx, name)
	if err != nil {
		return "", scrub(err, v)
	}
	return checkSecret(name, v)
}

// sender returns the function that makes one attempt for the channel's
// type, after checking what the type needs.
func (n *Notifier) sender(j job) (func(context.Context, delivery) error, error) {
	if j.TS != "" && j.Channel.Type != "slack" {
		return nil, fmt.Errorf("a %s message cannot be replaced, only a Slack one", j.Channel.Type)
	}
	switch j.Channel.Type {
	case "slack":
		return n.slack, nil
	case "telegram":
		return n.telegram, nil
	case "webhook":
		if _, err := webhookURL(j.Channel.URL); err != nil {
			return nil, err
		}
		return n.webhook, nil
	}
	return nil, fmt.Errorf("unknown channel type %q", j.Channel.Type)
}
