// Package ledger is the budget.Ledger on DynamoDB: a counter item per
// counter and an item per open reservation in the budget table.
//
//	pk "counter#"+key     sk "-"      a budget counter (key: budget.CounterKey.String)
//	pk "hold#"+id         sk "-"      a reservation: open until settled_by is set
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
	"github.com/wardenhq/warden/shared/pricing"
)

// Ledger is the budget.Ledger on DynamoDB, the shape the port was made for
// (budget.Ledger's doc): a counter item per counter and an item per open
// reservation, changed only by transactions and atomic ADDs, so that any
// number of Lambda instances share one cap.
//
// A counter item holds spent, held and used (spent + held) in both units.
// used is kept because a condition expression cannot add: Reserve's
// condition on each capped unit is used <= cap - max(worst, 1), which is
// Charge.Admits (a counter at its cap admits nothing, not even a call that
// may cost nothing). Reserve is one TransactWriteItems of the conditional
// ADD on every counter and the Put of the reservation: all or nothing, and
// concurrent reservations can never overshoot. Settle is one
// TransactWriteItems that marks the reservation settled (on condition that
// it was open) and ADDs to its counters, then, per threshold the new spend
// has reached, a conditional write of an alert_<pct> attribute that only
// its first writer wins: each alert fires once per window, whoever
// settles. (A crash between the two loses that alert; the spend is counted
// either way.) A settled reservation stays until its TTL.
//
// Both are idempotent when the SDK retries a call whose answer was lost
// after DynamoDB applied it: by the ClientRequestToken the SDK gives every
// TransactWriteItems, the same on its retries (DynamoDB answers a repeat
// within 10 minutes as the first, without applying it again). Settle also
// without it (an emulator does not honour it): its mark names the
// settlement, so a retry that finds its own mark succeeded.
type Ledger struct {
	client *dynamodb.Client
	table  string
	holds  sync.Map // reservation ID -> openHold, for those this instance made
}

var _ budget.Ledger = (*Ledger)(nil)

// New returns the ledger of db's budget table.
func New(db *dynamo.DB) *Ledger { return &Ledger{client: db.Client(), table: db.Names().Budget} }

const (
	counterSK   = "-"
	alertPrefix = "alert_"
	// counterKeepDays is how long a counter stays after its window ends,
	// for budget status and history; holdKeepDays how long a hold a crash
	// left unsettled stays (its worst case stays in the counter).
	counterKeepDays = 90
	holdKeepDays    = 7
)

func counterPK(k budget.CounterKey) string { return "counter#" + k.String() }
func holdPK(id string) string              { return "hold#" + id }

// Reserve implements budget.Ledger.
func (l *Ledger) Reserve(ctx context.Context, r budget.Reservation) error {
	charges, err := json.Marshal(r.Charges)
	if err != nil {
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	created, err := ddb.FormatTime(r.Created)
	if err != nil {
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	seen := map[string]bool{}
	items := make([]types.TransactWriteItem, 0, len(r.Charges)+1)
	for i, ch := range r.Charges {
		pk := counterPK(ch.Key)
		if seen[pk] {
			return fmt.Errorf("reserve %s: counter %s charged twice", r.ID, ch.Key)
		}
		seen[pk] = true
		cond, values, ok := admits(ch, r.Worst)
		if !ok {
			return l.capError(ctx, i, ch.Key)
		}
		ttl, err := counterTTL(ch.Key)
		if err != nil {
			return fmt.Errorf("reserve %s: %w", r.ID, err)
		}
		values[":wu"], values[":wt"], values[":ttl"] = ddb.Num(int64(r.Worst.USD)), ddb.Num(r.Worst.Tokens), ddb.Num(ttl)
		u := &types.Update{
			TableName:                 aws.String(l.table),
			Key:                       ddb.Key(pk, counterSK),
			UpdateExpression:          aws.String("SET #ttl = if_not_exists(#ttl, :ttl) ADD held_usd :wu, held_tokens :wt, used_usd :wu, used_tokens :wt"),
			ExpressionAttributeNames:  map[string]string{"#ttl": awsconfig.AttrTTL},
			ExpressionAttributeValues: values,
		}
		if cond != "" {
			u.ConditionExpression = aws.String(cond)
		}
		items = append(items, types.TransactWriteItem{Update: u})
	}
	hold := &ddb.Item{M: ddb.Key(holdPK(r.ID), counterSK)}
	hold.SetS("created_at", created)
	hold.SetN("worst_usd", int64(r.Worst.USD))
	hold.SetN("worst_tokens", r.Worst.Tokens)
	hold.SetS("charges", string(charges))
	hold.SetN(awsconfig.AttrTTL, r.Created.AddDate(0, 0, holdKeepDays).Unix())
	items = append(items, types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(l.table),
		Item:                hold.M,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}})
	failed, err := ddb.Transact(ctx, l.client, items)
	if err == nil {
		// The same instance settles what it reserved: keep what Settle
		// needs, and spare it a read.
		l.holds.Store(r.ID, openHold{worst: r.Worst, charges: slices.Clone(r.Charges)})
	}
	switch {
	case failed == len(r.Charges):
		return fmt.Errorf("reserve %s: a reservation with this ID exists already", r.ID)
	case failed >= 0:
		return l.capError(ctx, failed, r.Charges[failed].Key)
	case err != nil:
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	return nil
}

// admits is Charge.Admits as a condition expression on the counter item,
// with its values; ok is false when no counter could admit worst.
func admits(ch budget.Charge, worst budget.Amount) (cond string, values map[string]types.AttributeValue, ok bool) {
	values = map[string]types.AttributeValue{}
	var conds []string
	for _, u := range []struct {
		name      string
		cap, want int64
	}{
		{"usd", int64(ch.Cap.USD), int64(worst.USD)},
		{"tokens", ch.Cap.Tokens, worst.Tokens},
	} {
		if u.cap <= 0 {
			continue // not capped in this unit
		}
		limit := u.cap - max(u.want, 1)
		if limit < 0 {
			return "", nil, false
		}
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(used_%s) OR used_%s <= :lim_%s)", u.name, u.name, u.name))
		values[":lim_"+u.name] = ddb.Num(limit)
	}
	return strings.Join(conds, " AND "), values, true
}

// capError is the CapError for charge i, with its counter as it stands.
func (l *Ledger) capError(ctx context.Context, i int, k budget.CounterKey) error {
	cs, err := l.Counters(ctx, []budget.CounterKey{k})
	if err != nil {
		return fmt.Errorf("charge %d would cross its cap; reading its counter: %w", i, err)
	}
	return &budget.CapError{Charge: i, Counter: cs[0]}
}

// counterTTL is when a counter's item may go: counterKeepDays after its
// window ends.
func counterTTL(k budget.CounterKey) (int64, error) {
	w, err := budget.WindowAt(k.Period, k.Window)
	if err != nil {
		return 0, err
	}
	return w.End.AddDate(0, 0, counterKeepDays).Unix(), nil
}

// Settle implements budget.Ledger.
func (l *Ledger) Settle(ctx context.Context, id string, actual budget.Amount) ([]budget.Settled, error) {
	h, err := l.hold(ctx, id)
	if err != nil {
		return nil, err
	}
	worst, charges := h.worst, h.charges
	change := actual.Sub(worst)
	// The mark names this settlement, so that a retry knows its own.
	me := rand.Text()
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName:                 aws.String(l.table),
		Key:                       ddb.Key(holdPK(id), counterSK),
		UpdateExpression:          aws.String("SET settled_by = :me"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(settled_by)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": ddb.Str(me)},
	}}}
	for _, ch := range charges {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:        aws.String(l.table),
			Key:              ddb.Key(counterPK(ch.Key), counterSK),
			UpdateExpression: aws.String("ADD held_usd :hu, held_tokens :ht, spent_usd :su, spent_tokens :st, used_usd :uu, used_tokens :ut"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":hu": ddb.Num(-int64(worst.USD)), ":ht": ddb.Num(-worst.Tokens),
				":su": ddb.Num(int64(actual.USD)), ":st": ddb.Num(actual.Tokens),
				":uu": ddb.Num(int64(change.USD)), ":ut": ddb.Num(change.Tokens),
			},
		}})
	}
	failed, err := ddb.Transact(ctx, l.client, items)
	if failed == 0 {
		// Settled already: by this call's first try, whose answer was
		// lost, or by another caller.
		if h, ok, rerr := l.stored(ctx, id); rerr == nil && ok && h.settledBy == me {
			failed, err = -1, nil
		}
	}
	if failed == 0 || err == nil {
		l.holds.Delete(id)
	}
	if failed == 0 {
		return nil, budget.ErrUnknownHold // settled meanwhile by another caller
	}
	if err != nil {
		return nil, fmt.Errorf("settle %s: %w", id, err)
	}
	// The counters as they stand now, all in one read, for the alerts.
	keys := make([]budget.CounterKey, len(charges))
	for i, ch := range charges {
		keys[i] = ch.Key
	}
	after, err := l.Counters(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("settle %s: spend counted; read its counters for alerts: %w", id, err)
	}
	res := make([]budget.Settled, len(charges))
	for i, ch := range charges {
		if res[i], err = l.alert(ctx, ch, after[i], worst, actual); err != nil {
			return nil, fmt.Errorf("settle %s: spend counted; alerts of %s: %w", id, ch.Key, err)
		}
	}
	return res, nil
}

// openHold is what settling a reservation needs of it.
type openHold struct {
	worst   budget.Amount
	charges []budget.Charge
}

// hold returns the open reservation id: from memory if this instance made
// it, else from its item (a strongly consistent read).
func (l *Ledger) hold(ctx context.Context, id string) (openHold, error) {
	if h, ok := l.holds.Load(id); ok {
		return h.(openHold), nil
	}
	h, ok, err := l.stored(ctx, id)
	switch {
	case err != nil:
		return openHold{}, fmt.Errorf("settle %s: %w", id, err)
	case !ok || h.settled:
		return openHold{}, budget.ErrUnknownHold
	}
	return h.openHold, nil
}

// storedHold is a reservation's item.
type storedHold struct {
	openHold
	settled   bool
	settledBy string
}

// stored reads the reservation id's item (strongly consistent); ok is
// false when there is none.
func (l *Ledger) stored(ctx context.Context, id string) (storedHold, bool, error) {
	out, err := l.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		Key:            ddb.Key(holdPK(id), counterSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		return storedHold{}, false, err
	}
	it := &ddb.Item{M: out.Item}
	h := storedHold{openHold: openHold{worst: budget.Amount{USD: pricing.Money(it.N("worst_usd")), Tokens: it.N("worst_tokens")}},
		settledBy: it.S("settled_by")}
	h.settled = h.settledBy != ""
	if err := json.Unmarshal([]byte(it.S("charges")), &h.charges); err != nil || it.Err != nil {
		return storedHold{}, false, fmt.Errorf("malformed reservation item %s: %v", id, errors.Join(it.Err, err))
	}
	return h, true, nil
}

// alert takes the counter of ch as read after a settlement of worst that
// cost actual, and marks the thresholds its spend has reached that no one
// has reported, each with a write that only its first writer wins.
func (l *Ledger) alert(ctx context.Context, ch budget.Charge, after budget.Counter, worst, actual budget.Amount) (budget.Settled, error) {
	// Charge.Settle from the state before this settlement gives the
	// counter as read and the thresholds reached and not yet marked.
	before := budget.Counter{Spent: after.Spent.Sub(actual), Held: after.Held.Add(worst), Alerted: after.Alerted}
	s := ch.Settle(before, worst, actual)
	var won []int
	for _, pct := range s.Alerts {
		name := alertPrefix + strconv.Itoa(pct)
		_, err := l.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(l.table),
			Key:                       ddb.Key(counterPK(ch.Key), counterSK),
			UpdateExpression:          aws.String("SET #a = :true"),
			ConditionExpression:       aws.String("attribute_not_exists(#a)"),
			ExpressionAttributeNames:  map[string]string{"#a": name},
			ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
		})
		if ddb.ConditionFailed(err) {
			continue // another settlement reported it first
		}
		if err != nil {
			return budget.Settled{}, err
		}
		won = append(won, pct)
	}
	s.Alerts = won
	return s, nil
}

// Counters implements budget.Ledger, with strongly consistent reads.
func (l *Ledger) Counters(ctx context.Context, keys []budget.CounterKey) ([]budget.Counter, error) {
	byPK := map[string]budget.Counter{}
	var pending []map[string]types.AttributeValue
	for _, k := range keys {
		pk := counterPK(k)
		if _, ok := byPK[pk]; !ok {
			byPK[pk] = budget.Counter{}
			pending = append(pending, ddb.Key(pk, counterSK))
		}
	}
	err := ddb.BatchGet(ctx, l.client, l.table, pending, "", func(it *ddb.Item) {
		if c := readCounter(it); it.Err == nil {
			byPK[it.S(awsconfig.AttrPK)] = c
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := make([]budget.Counter, len(keys))
	for i, k := range keys {
		out[i] = byPK[counterPK(k)]
		out[i].Alerted = slices.Clone(out[i].Alerted)
	}
	return out, nil
}

func readCounter(it *ddb.Item) budget.Counter {
	c := budget.Counter{
		Spent: budget.Amount{USD: pricing.Money(it.N("spent_usd")), Tokens: it.N("spent_tokens")},
		Held:  budget.Amount{USD: pricing.Money(it.N("held_usd")), Tokens: it.N("held_tokens")},
	}
	for name := range it.M {
		if pct, ok := strings.CutPrefix(name, alertPrefix); ok {
			n, err := strconv.Atoi(pct)
			if err != nil {
				it.Fail(name, "an alert threshold")
			}
			c.Alerted = append(c.Alerted, n)
		}
	}
	slices.Sort(c.Alerted)
	return c
}
