package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
	"github.com/wardenhq/warden/shared/watchdog"
)

// WatchdogStore is the watchdog.Store on DynamoDB, in the budget table, so
// that a session's calls are counted together whichever function instance
// serves them:
//
//	pk "wd#"+session  sk "-"  st (the counts, JSON), ver, ttl
//
// An Update is a strongly consistent GetItem, the watchdog's counting, and
// — if a count changed — a PutItem on condition that the version is still
// the one read, started over when another instance wrote first. The item goes (TTL) once the
// counts no longer matter: the policy's window, at least an hour, after
// the session's last event.
type WatchdogStore struct {
	client *dynamodb.Client
	table  string
}

var _ watchdog.Store = (*WatchdogStore)(nil)

// NewWatchdogStore returns the watchdog's counts in db's budget table.
func NewWatchdogStore(db *dynamo.DB) *WatchdogStore {
	return &WatchdogStore{client: db.Client(), table: db.Names().Budget}
}

func watchdogPK(session string) string { return "wd#" + session }

// Update implements watchdog.Store.
func (w *WatchdogStore) Update(ctx context.Context, session string, now time.Time, keep time.Duration, fn func(*watchdog.Session)) error {
	key := ddb.Key(watchdogPK(session), counterSK)
	for attempt := range ddb.MaxAttempts {
		if attempt > 0 {
			ddb.Backoff(ctx, attempt)
		}
		out, err := w.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("read the watchdog's counts: %w", err)
		}
		s, ver, st := &watchdog.Session{}, int64(0), ""
		if out.Item != nil {
			it := &ddb.Item{M: out.Item}
			ver, st = it.N("ver"), it.S("st")
			if st != "" {
				if err := json.Unmarshal([]byte(st), s); err != nil {
					return err
				}
			}
			if it.Err != nil {
				return fmt.Errorf("watchdog item of session %s: %w", session, it.Err)
			}
		}
		fn(s)
		data, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if string(data) == st {
			return nil // no count changed: nothing to write
		}
		it := &ddb.Item{M: ddb.Key(watchdogPK(session), counterSK)}
		it.SetS("st", string(data))
		it.SetN("ver", ver+1)
		it.SetN(awsconfig.AttrTTL, now.Add(keep).Unix())
		in := &dynamodb.PutItemInput{TableName: aws.String(w.table), Item: it.M,
			ConditionExpression: aws.String("attribute_not_exists(pk)")}
		if out.Item != nil {
			in.ConditionExpression = aws.String("ver = :ver")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": ddb.Num(ver)}
		}
		_, err = w.client.PutItem(ctx, in)
		if ddb.ConditionFailed(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write the watchdog's counts: %w", err)
		}
		return nil
	}
	return fmt.Errorf("write the watchdog's counts: %w", ddb.ErrContended)
}

// Forget implements watchdog.Store: the counts go (an empty st), the
// version moves on, so that an Update that read them before starts over.
func (w *WatchdogStore) Forget(ctx context.Context, session string) error {
	_, err := w.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(w.table),
		Key:                      ddb.Key(watchdogPK(session), counterSK),
		UpdateExpression:         aws.String("SET st = :none, #ttl = if_not_exists(#ttl, :ttl) ADD ver :one"),
		ExpressionAttributeNames: map[string]string{"#ttl": awsconfig.AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":none": ddb.Str(""), ":one": ddb.Num(1), ":ttl": ddb.Num(time.Now().Add(time.Hour).Unix())},
	})
	if err != nil {
		return fmt.Errorf("forget the watchdog's counts of session %s: %w", session, err)
	}
	return nil
}
