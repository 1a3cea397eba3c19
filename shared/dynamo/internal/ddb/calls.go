package ddb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
)

// MaxAttempts bounds how often an optimistic update starts over when other
// writers keep coming first.
const MaxAttempts = 20

// ErrContended is returned when an update lost to other writers
// MaxAttempts times in a row.
var ErrContended = errors.New("dynamodb: too many concurrent writers on one item, try again")

// Key is an item's primary key.
func Key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		awsconfig.AttrPK: &types.AttributeValueMemberS{Value: pk},
		awsconfig.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// ConditionFailed reports whether err is a failed condition expression.
func ConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func Str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func Num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

// BatchGet reads the items of keys (distinct, of one table) with strongly
// consistent reads, in BatchGetItem's chunks of 100, calling read for each
// item found; projection, if not empty, names the attributes to read. An
// item read leaves its decoding error in it.Err, which BatchGet returns.
func BatchGet(ctx context.Context, client *dynamodb.Client, table string, keys []map[string]types.AttributeValue, projection string, read func(*Item)) error {
	for len(keys) > 0 {
		n := min(len(keys), 100)
		ka := types.KeysAndAttributes{Keys: keys[:n], ConsistentRead: aws.Bool(true)}
		if projection != "" {
			ka.ProjectionExpression = aws.String(projection)
		}
		batch := map[string]types.KeysAndAttributes{table: ka}
		keys = keys[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt == MaxAttempts {
				return ErrContended
			}
			if attempt > 0 {
				Backoff(ctx, attempt)
			}
			out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: batch})
			if err != nil {
				return err
			}
			for _, m := range out.Responses[table] {
				it := &Item{M: m}
				read(it)
				if it.Err != nil {
					return fmt.Errorf("item %s: %w", it.S(awsconfig.AttrPK), it.Err)
				}
			}
			batch = out.UnprocessedKeys
		}
	}
	return nil
}

// Transact runs a TransactWriteItems, starting over after a conflict with
// another transaction on the same items. failed is the index of the item
// whose condition failed, or -1.
func Transact(ctx context.Context, client *dynamodb.Client, items []types.TransactWriteItem) (failed int, err error) {
	for attempt := range MaxAttempts {
		if attempt > 0 {
			Backoff(ctx, attempt)
		}
		_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
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

// Backoff sleeps before attempt (1, 2, ...): a few milliseconds, doubling,
// jittered, at most 100 ms.
func Backoff(ctx context.Context, attempt int) {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Query runs a query to its last page, decoding each item with read.
func Query(ctx context.Context, client *dynamodb.Client, in *dynamodb.QueryInput, read func(*Item)) error {
	p := dynamodb.NewQueryPaginator(client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, m := range page.Items {
			it := &Item{M: m}
			read(it)
			if it.Err != nil {
				return it.Err
			}
		}
	}
	return nil
}
