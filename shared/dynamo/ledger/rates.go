package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/budget"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
)

// Rates is the budget.RateStore on DynamoDB, in the budget table, so that
// every function instance counts against the same rate limits:
//
//	pk "rate#"+limit+"#"+scope  sk "-"  reqs, toks, at, full (Unix ns), ver, ttl
//
// (a limit's ID holds no "#", so the key is unambiguous). An Update is a
// strongly consistent BatchGetItem of the counters, the limiter's
// arithmetic, and a write of those it changed on condition that their
// version is still the one read — a PutItem for one counter, a
// TransactWriteItems for several — started over when another instance
// wrote first. A counter goes (TTL) a minute after it is back at full.
type Rates struct {
	client *dynamodb.Client
	table  string
}

var _ budget.RateStore = (*Rates)(nil)

// NewRates returns the rate counters of db's budget table.
func NewRates(db *dynamo.DB) *Rates { return &Rates{client: db.Client(), table: db.Names().Budget} }

func ratePK(k budget.RateKey) string { return "rate#" + k.Limit + "#" + k.Scope }

// Update implements budget.RateStore. Its counters are not bounded in
// number (strict is not used): TTL removes the idle ones.
func (r *Rates) Update(ctx context.Context, keys []budget.RateKey, _ time.Time, _ bool, fn func([]budget.Bucket) error) error {
	index := make(map[string]int, len(keys))
	ks := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		index[ratePK(k)] = i
		ks[i] = ddb.Key(ratePK(k), counterSK)
	}
	for attempt := range ddb.MaxAttempts {
		if attempt > 0 {
			ddb.Backoff(ctx, attempt)
		}
		bs := make([]budget.Bucket, len(keys))
		vers := make([]int64, len(keys))
		err := ddb.BatchGet(ctx, r.client, r.table, ks, "", func(it *ddb.Item) {
			i := index[it.S(awsconfig.AttrPK)]
			bs[i] = budget.Bucket{Reqs: it.F("reqs"), Toks: it.F("toks"), At: time.Unix(0, it.N("at")).UTC(), Full: time.Unix(0, it.N("full")).UTC()}
			vers[i] = it.N("ver")
		})
		if err != nil {
			return fmt.Errorf("read rate limit counters: %w", err)
		}
		read := slices.Clone(bs)
		if err := fn(bs); err != nil {
			return err
		}
		var writes []types.TransactWriteItem
		for i := range keys {
			if bs[i] != read[i] {
				writes = append(writes, types.TransactWriteItem{Put: r.put(keys[i], bs[i], vers[i])})
			}
		}
		switch len(writes) {
		case 0:
			return nil
		case 1:
			p := writes[0].Put
			_, err = r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
				ConditionExpression: p.ConditionExpression, ExpressionAttributeValues: p.ExpressionAttributeValues})
			if ddb.ConditionFailed(err) {
				continue
			}
		default:
			var failed int
			failed, err = ddb.Transact(ctx, r.client, writes)
			if failed >= 0 {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("write rate limit counters: %w", err)
		}
		return nil
	}
	return fmt.Errorf("write rate limit counters: %w", ddb.ErrContended)
}

// put writes b as version ver+1 of k's counter, on condition that it is
// still version ver (0: none yet).
func (r *Rates) put(k budget.RateKey, b budget.Bucket, ver int64) *types.Put {
	it := &ddb.Item{M: ddb.Key(ratePK(k), counterSK)}
	it.SetF("reqs", b.Reqs)
	it.SetF("toks", b.Toks)
	it.SetN("at", b.At.UnixNano())
	it.SetN("full", b.Full.UnixNano())
	it.SetN("ver", ver+1)
	it.SetN(awsconfig.AttrTTL, b.Full.Add(time.Minute).Unix())
	cond := "ver = :ver"
	if ver == 0 {
		cond = "attribute_not_exists(pk)"
	}
	p := &types.Put{TableName: aws.String(r.table), Item: it.M, ConditionExpression: aws.String(cond)}
	if ver != 0 {
		p.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": ddb.Num(ver)}
	}
	return p
}
