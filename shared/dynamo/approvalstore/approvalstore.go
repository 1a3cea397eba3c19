// Package approvalstore is the approval.Store on DynamoDB, in the identity
// table:
//
//	pk "approval#"+id     sk "-"  an approval: data (JSON), state, ver, ttl;
//	                              gsi1pk "approval-pending", gsi1sk expires#id while pending,
//	                              gsi1pk "approval", gsi1sk created#id once not
//	pk "approvalkey#"+key sk "-"  the key's latest approval: latest (its ID), ver
//	pk "once#"+hash       sk "-"  a Slack request taken (FirstTime), until its ttl
//
// Every change is conditioned on the versions it read (the approval's, and
// for Latest the key's) and starts over when another writer came first, so
// that two decisions, or two requests opening an approval, cannot both
// win. Approvals go (TTL) 90 days after they were opened; the audit trail
// keeps their story.
package approvalstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/approval"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
)

const (
	pendingGSI  = "approval-pending"
	decidedGSI  = "approval"
	keepDays    = 90
	maxListPage = 100
)

// Store is the approval store. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
}

var _ approval.Store = (*Store)(nil)

// New returns the approvals of db's identity table.
func New(db *dynamo.DB) *Store { return &Store{client: db.Client(), table: db.Names().Identity} }

func approvalPK(id string) string { return "approval#" + id }
func keyPK(key string) string     { return "approvalkey#" + key }

// stored is an approval as read, with its version and encoding.
type stored struct {
	a    approval.Approval
	ver  int64
	data string
}

func (s *Store) get(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: ddb.Key(pk, "-"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (s *Store) read(ctx context.Context, id string) (stored, error) {
	m, err := s.get(ctx, approvalPK(id))
	if err != nil {
		return stored{}, fmt.Errorf("read approval %s: %w", id, err)
	}
	if m == nil {
		return stored{}, approval.ErrNotFound
	}
	return decode(m)
}

func decode(m map[string]types.AttributeValue) (stored, error) {
	it := &ddb.Item{M: m}
	st := stored{ver: it.N("ver"), data: it.S("data")}
	if it.Err != nil {
		return stored{}, it.Err
	}
	if err := json.Unmarshal([]byte(st.data), &st.a); err != nil {
		return stored{}, fmt.Errorf("stored approval %s: %w", it.S(awsconfig.AttrPK), err)
	}
	return st, nil
}

// put is the write of a as version ver+1, on condition that it is still
// version ver (0: new).
func (s *Store) put(a approval.Approval, data []byte, ver int64) (*types.Put, error) {
	it := &ddb.Item{M: ddb.Key(approvalPK(a.ID), "-")}
	it.SetS("data", string(data))
	it.SetS("state", string(a.State))
	it.SetN("ver", ver+1)
	it.SetN(awsconfig.AttrTTL, a.Created.AddDate(0, 0, keepDays).Unix())
	if a.State == approval.Pending {
		expires, err := ddb.FormatTime(a.Expires)
		if err != nil {
			return nil, err
		}
		it.SetS(awsconfig.AttrGSI1PK, pendingGSI)
		it.SetS(awsconfig.AttrGSI1SK, expires+"#"+a.ID)
	} else {
		created, err := ddb.FormatTime(a.Created)
		if err != nil {
			return nil, err
		}
		it.SetS(awsconfig.AttrGSI1PK, decidedGSI)
		it.SetS(awsconfig.AttrGSI1SK, created+"#"+a.ID)
	}
	return conditioned(&types.Put{TableName: aws.String(s.table), Item: it.M}, ver), nil
}

// conditioned adds the version condition to p.
func conditioned(p *types.Put, ver int64) *types.Put {
	if ver == 0 {
		p.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		p.ConditionExpression = aws.String("ver = :ver")
		p.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": ddb.Num(ver)}
	}
	return p
}

// write makes the writes at once, conditionally; conflict is true when a
// condition failed (another writer came first).
func (s *Store) write(ctx context.Context, items []types.TransactWriteItem) (conflict bool, err error) {
	switch len(items) {
	case 0:
		return false, nil
	case 1:
		p := items[0].Put
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
			ConditionExpression: p.ConditionExpression, ExpressionAttributeValues: p.ExpressionAttributeValues})
		if ddb.ConditionFailed(err) {
			return true, nil
		}
		return false, err
	}
	failed, err := ddb.Transact(ctx, s.client, items)
	if failed >= 0 {
		return true, nil
	}
	return false, err
}

// Latest implements approval.Store.
func (s *Store) Latest(ctx context.Context, key string, fn func(*approval.Approval) (*approval.Approval, error)) error {
	for attempt := range ddb.MaxAttempts {
		if attempt > 0 {
			ddb.Backoff(ctx, attempt)
		}
		ptr, err := s.get(ctx, keyPK(key))
		if err != nil {
			return fmt.Errorf("read approval key: %w", err)
		}
		var ptrVer int64
		var cur *stored
		if ptr != nil {
			it := &ddb.Item{M: ptr}
			ptrVer = it.N("ver")
			st, err := s.read(ctx, it.S("latest"))
			if err != nil && !errors.Is(err, approval.ErrNotFound) {
				return err
			}
			if err == nil {
				cur = &st
			}
		}
		var latest *approval.Approval
		if cur != nil {
			a := cur.a
			latest = &a
		}
		n, err := fn(latest)
		if err != nil {
			return err
		}
		var items []types.TransactWriteItem
		if cur != nil {
			data, err := json.Marshal(*latest)
			if err != nil {
				return err
			}
			if string(data) != cur.data {
				p, err := s.put(*latest, data, cur.ver)
				if err != nil {
					return err
				}
				items = append(items, types.TransactWriteItem{Put: p})
			}
		}
		if n != nil {
			data, err := json.Marshal(*n)
			if err != nil {
				return err
			}
			p, err := s.put(*n, data, 0)
			if err != nil {
				return err
			}
			it := &ddb.Item{M: ddb.Key(keyPK(key), "-")}
			it.SetS("latest", n.ID)
			it.SetN("ver", ptrVer+1)
			it.SetN(awsconfig.AttrTTL, n.Created.AddDate(0, 0, keepDays).Unix())
			items = append(items, types.TransactWriteItem{Put: p},
				types.TransactWriteItem{Put: conditioned(&types.Put{TableName: aws.String(s.table), Item: it.M}, ptrVer)})
		} else if len(items) > 0 && ptr != nil {
			// A change of the latest holds only while it is the latest.
			items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName: aws.String(s.table), Key: ddb.Key(keyPK(key), "-"),
				ConditionExpression:       aws.String("ver = :ver"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":ver": ddb.Num(ptrVer)},
			}})
		}
		conflict, err := s.write(ctx, items)
		if err != nil {
			return fmt.Errorf("write approval: %w", err)
		}
		if !conflict {
			return nil
		}
	}
	return fmt.Errorf("write approval: %w", ddb.ErrContended)
}

// Update implements approval.Store: an approval fn leaves as it was is
// not written.
func (s *Store) Update(ctx context.Context, id string, fn func(*approval.Approval) error) (approval.Approval, error) {
	for attempt := range ddb.MaxAttempts {
		if attempt > 0 {
			ddb.Backoff(ctx, attempt)
		}
		st, err := s.read(ctx, id)
		if err != nil {
			return approval.Approval{}, err
		}
		a := st.a
		if err := fn(&a); err != nil {
			return approval.Approval{}, err
		}
		data, err := json.Marshal(a)
		if err != nil {
			return approval.Approval{}, err
		}
		if string(data) == st.data {
			return a, nil // unchanged: nothing to write
		}
		p, err := s.put(a, data, st.ver)
		if err != nil {
			return approval.Approval{}, err
		}
		conflict, err := s.write(ctx, []types.TransactWriteItem{{Put: p}})
		if err != nil {
			return approval.Approval{}, fmt.Errorf("write approval %s: %w", id, err)
		}
		if !conflict {
			return a, nil
		}
	}
	return approval.Approval{}, fmt.Errorf("write approval %s: %w", id, ddb.ErrContended)
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (approval.Approval, error) {
	st, err := s.read(ctx, id)
	return st.a, err
}

// List implements approval.Store: pending approvals from their partition
// of the index, the others from theirs (filtered by state), newest first.
func (s *Store) List(ctx context.Context, f approval.Filter) ([]approval.Approval, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = approval.DefaultListLimit
	}
	var out []approval.Approval
	if f.State == "" || f.State == approval.Pending {
		p, err := s.query(ctx, pendingGSI, "", "", limit)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	if f.State != approval.Pending {
		p, err := s.query(ctx, decidedGSI, "", string(f.State), limit)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	slices.SortFunc(out, func(a, b approval.Approval) int { return b.Created.Compare(a.Created) })
	return out[:min(len(out), limit)], nil
}

// Due implements approval.Store.
func (s *Store) Due(ctx context.Context, t time.Time) ([]approval.Approval, error) {
	upTo, err := ddb.FormatTime(t)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, pendingGSI, upTo+"#~", "", 0)
}

// query reads a partition of the index, newest first (by its sort key):
// up to the sort key upTo if set, only in state if set, at most limit (0:
// all).
func (s *Store) query(ctx context.Context, partition, upTo, state string, limit int) ([]approval.Approval, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(awsconfig.IndexGSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.Str(partition)},
		ScanIndexForward:          aws.Bool(upTo != ""),
		Limit:                     aws.Int32(maxListPage),
	}
	if upTo != "" {
		in.KeyConditionExpression = aws.String("gsi1pk = :pk AND gsi1sk <= :upto")
		in.ExpressionAttributeValues[":upto"] = ddb.Str(upTo)
	}
	if state != "" {
		in.FilterExpression = aws.String("#state = :state")
		in.ExpressionAttributeNames = map[string]string{"#state": "state"}
		in.ExpressionAttributeValues[":state"] = ddb.Str(state)
	}
	var out []approval.Approval
	var decodeErr error
	err := ddb.Query(ctx, s.client, in, func(it *ddb.Item) {
		if limit > 0 && len(out) >= limit || decodeErr != nil {
			return
		}
		st, err := decode(it.M)
		if err != nil {
			decodeErr = err
			return
		}
		out = append(out, st.a)
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return out, nil
}

// FirstTime records id (a Slack request's signature) for window and
// reports whether it was new: one conditional PutItem, so that any number
// of instances take a request once.
//
//	pk "once#"+sha256(id)  sk "-"  ttl
func (s *Store) FirstTime(ctx context.Context, id string, window time.Duration) (bool, error) {
	sum := sha256.Sum256([]byte(id))
	it := &ddb.Item{M: ddb.Key("once#"+hex.EncodeToString(sum[:]), "-")}
	it.SetN(awsconfig.AttrTTL, time.Now().Add(window).Unix())
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it.M,
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if ddb.ConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remember a request: %w", err)
	}
	return true, nil
}
