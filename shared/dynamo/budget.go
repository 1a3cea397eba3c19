package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/budget"
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
// TransactWriteItems of the reservation's conditional Delete and the ADDs
// on its counters, then, per threshold the new spend has reached, a
// conditional write of an alert_<pct> attribute that only its first writer
// wins: each alert fires once per window, whoever settles. (A crash between
// the two loses that alert; the spend is counted either way.)
type Ledger struct{ db *DB }

var _ budget.Ledger = Ledger{}

// Budgets returns the budget ledger.
func (db *DB) Budgets() Ledger { return Ledger{db} }

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
func (l Ledger) Reserve(ctx context.Context, r budget.Reservation) error {
	charges, err := json.Marshal(r.Charges)
	if err != nil {
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	created, err := formatTime(r.Created)
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
		values[":wu"], values[":wt"], values[":ttl"] = num(int64(r.Worst.USD)), num(r.Worst.Tokens), num(ttl)
		u := &types.Update{
			TableName:                 aws.String(l.db.tables.Budget),
			Key:                       key(pk, counterSK),
			UpdateExpression:          aws.String("SET #ttl = if_not_exists(#ttl, :ttl) ADD held_usd :wu, held_tokens :wt, used_usd :wu, used_tokens :wt"),
			ExpressionAttributeNames:  map[string]string{"#ttl": awsconfig.AttrTTL},
			ExpressionAttributeValues: values,
		}
		if cond != "" {
			u.ConditionExpression = aws.String(cond)
		}
		items = append(items, types.TransactWriteItem{Update: u})
	}
	hold := &item{m: key(holdPK(r.ID), counterSK)}
	hold.setS("created_at", created)
	hold.setN("worst_usd", int64(r.Worst.USD))
	hold.setN("worst_tokens", r.Worst.Tokens)
	hold.setS("charges", string(charges))
	hold.setN(awsconfig.AttrTTL, r.Created.AddDate(0, 0, holdKeepDays).Unix())
	items = append(items, types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(l.db.tables.Budget),
		Item:                hold.m,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}})
	failed, err := l.db.transact(ctx, items)
	if err == nil {
		// The same instance settles what it reserved: keep what Settle
		// needs, and spare it a read.
		l.db.holds.Store(r.ID, openHold{worst: r.Worst, charges: slices.Clone(r.Charges)})
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
		values[":lim_"+u.name] = num(limit)
	}
	return strings.Join(conds, " AND "), values, true
}

// capError is the CapError for charge i, with its counter as it stands.
func (l Ledger) capError(ctx context.Context, i int, k budget.CounterKey) error {
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
func (l Ledger) Settle(ctx context.Context, id string, actual budget.Amount) ([]budget.Settled, error) {
	h, err := l.hold(ctx, id)
	if err != nil {
		return nil, err
	}
	worst, charges := h.worst, h.charges
	change := actual.Sub(worst)
	items := []types.TransactWriteItem{{Delete: &types.Delete{
		TableName:           aws.String(l.db.tables.Budget),
		Key:                 key(holdPK(id), counterSK),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	}}}
	for _, ch := range charges {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:        aws.String(l.db.tables.Budget),
			Key:              key(counterPK(ch.Key), counterSK),
			UpdateExpression: aws.String("ADD held_usd :hu, held_tokens :ht, spent_usd :su, spent_tokens :st, used_usd :uu, used_tokens :ut"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":hu": num(-int64(worst.USD)), ":ht": num(-worst.Tokens),
				":su": num(int64(actual.USD)), ":st": num(actual.Tokens),
				":uu": num(int64(change.USD)), ":ut": num(change.Tokens),
			},
		}})
	}
	failed, err := l.db.transact(ctx, items)
	if failed == 0 || err == nil {
		l.db.holds.Delete(id)
	}
	if failed == 0 {
		return nil, budget.ErrUnknownHold // settled meanwhile by another caller
	}
	if err != nil {
		return nil, fmt.Errorf("settle %s: %w", id, err)
	}
	res := make([]budget.Settled, len(charges))
	for i, ch := range charges {
		if res[i], err = l.alert(ctx, ch, worst, actual); err != nil {
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
func (l Ledger) hold(ctx context.Context, id string) (openHold, error) {
	if h, ok := l.db.holds.Load(id); ok {
		return h.(openHold), nil
	}
	out, err := l.db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.db.tables.Budget),
		Key:            key(holdPK(id), counterSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return openHold{}, fmt.Errorf("settle %s: %w", id, err)
	}
	if out.Item == nil {
		return openHold{}, budget.ErrUnknownHold
	}
	it := &item{m: out.Item}
	h := openHold{worst: budget.Amount{USD: pricing.Money(it.n("worst_usd")), Tokens: it.n("worst_tokens")}}
	if err := json.Unmarshal([]byte(it.s("charges")), &h.charges); err != nil || it.err != nil {
		return openHold{}, fmt.Errorf("settle %s: malformed hold item: %v", id, errors.Join(it.err, err))
	}
	return h, nil
}

// alert reads the counter of ch after a settlement of worst that cost
// actual, and marks the thresholds its spend has reached that no one has
// reported, each with a write that only its first writer wins.
func (l Ledger) alert(ctx context.Context, ch budget.Charge, worst, actual budget.Amount) (budget.Settled, error) {
	cs, err := l.Counters(ctx, []budget.CounterKey{ch.Key})
	if err != nil {
		return budget.Settled{}, err
	}
	after := cs[0]
	// Charge.Settle from the state before this settlement gives the
	// counter as read and the thresholds reached and not yet marked.
	before := budget.Counter{Spent: after.Spent.Sub(actual), Held: after.Held.Add(worst), Alerted: after.Alerted}
	s := ch.Settle(before, worst, actual)
	var won []int
	for _, pct := range s.Alerts {
		name := alertPrefix + strconv.Itoa(pct)
		_, err := l.db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(l.db.tables.Budget),
			Key:                       key(counterPK(ch.Key), counterSK),
			UpdateExpression:          aws.String("SET #a = :true"),
			ConditionExpression:       aws.String("attribute_not_exists(#a)"),
			ExpressionAttributeNames:  map[string]string{"#a": name},
			ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
		})
		if conditionFailed(err) {
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
func (l Ledger) Counters(ctx context.Context, keys []budget.CounterKey) ([]budget.Counter, error) {
	byPK := map[string]budget.Counter{}
	var pending []map[string]types.AttributeValue
	for _, k := range keys {
		pk := counterPK(k)
		if _, ok := byPK[pk]; !ok {
			byPK[pk] = budget.Counter{}
			pending = append(pending, key(pk, counterSK))
		}
	}
	err := l.db.batchGet(ctx, l.db.tables.Budget, pending, "", func(it *item) {
		if c := readCounter(it); it.err == nil {
			byPK[it.s(awsconfig.AttrPK)] = c
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

func readCounter(it *item) budget.Counter {
	c := budget.Counter{
		Spent: budget.Amount{USD: pricing.Money(it.n("spent_usd")), Tokens: it.n("spent_tokens")},
		Held:  budget.Amount{USD: pricing.Money(it.n("held_usd")), Tokens: it.n("held_tokens")},
	}
	for name := range it.m {
		if pct, ok := strings.CutPrefix(name, alertPrefix); ok {
			n, err := strconv.Atoi(pct)
			if err != nil {
				it.fail(name, "an alert threshold")
			}
			c.Alerted = append(c.Alerted, n)
		}
	}
	slices.Sort(c.Alerted)
	return c
}

// batchGet reads the items of keys (distinct, of one table) with strongly
// consistent reads, in BatchGetItem's chunks of 100, calling read for each
// item found; projection, if not empty, names the attributes to read. An
// item read leaves its decoding error in it.err, which batchGet returns.
func (db *DB) batchGet(ctx context.Context, table string, keys []map[string]types.AttributeValue, projection string, read func(*item)) error {
	for len(keys) > 0 {
		n := min(len(keys), 100)
		ka := types.KeysAndAttributes{Keys: keys[:n], ConsistentRead: aws.Bool(true)}
		if projection != "" {
			ka.ProjectionExpression = aws.String(projection)
		}
		batch := map[string]types.KeysAndAttributes{table: ka}
		keys = keys[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt == maxAttempts {
				return ErrContended
			}
			if attempt > 0 {
				backoff(ctx, attempt)
			}
			out, err := db.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: batch})
			if err != nil {
				return err
			}
			for _, m := range out.Responses[table] {
				it := &item{m: m}
				read(it)
				if it.err != nil {
					return fmt.Errorf("item %s: %w", it.s(awsconfig.AttrPK), it.err)
				}
			}
			batch = out.UnprocessedKeys
		}
	}
	return nil
}

// transact runs a TransactWriteItems, starting over after a conflict with
// another transaction on the same items. failed is the index of the item
// whose condition failed, or -1.
func (db *DB) transact(ctx context.Context, items []types.TransactWriteItem) (failed int, err error) {
	for attempt := range maxAttempts {
		if attempt > 0 {
			backoff(ctx, attempt)
		}
		_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tc *types.TransactionCanceledException
		if !errors.As(err, &tc) {
			return -1, err
		}
		conflict := false
		for i, r := range tc.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				return i, err
			case "TransactionConflict":
				conflict = true
			}
		}
		if !conflict {
			return -1, err
		}
	}
	return -1, ErrContended
}

// backoff sleeps before attempt (1, 2, ...): a few milliseconds, doubling,
// jittered, at most 100 ms.
func backoff(ctx context.Context, attempt int) {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
