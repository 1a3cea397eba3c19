package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
)

// AuditLog is the audit trail on DynamoDB, in two steps.
//
// Append, on the request's path, is one conditional PutItem of the record
// under its ID: durable (DynamoDB acknowledges a write once it is stored in
// several availability zones) before the action runs, and contention-free,
// since every record is its own item. The record has no place in the trail
// yet: Seq is 0.
//
// Sequence, run by the archiver on the table's stream, gives records their
// place: in batches, it reads the trail's head (the item "head": the last
// Seq and hash) and the heads of the batch's sessions, links each record
// (audit.Link, as the SQLite trail does on commit), and writes in one
// transaction the head, each record's Seq, hash and canonical encoding (on
// the condition that it has no Seq yet), and the session heads. Two
// sequencers racing lose nothing: the one whose head moved starts over,
// and a record delivered twice by the stream is sequenced once. A
// sequenced record is indexed by Seq in gsi1 (gsi1pk "seq#" + Seq/1000,
// gsi1sk Seq at a fixed width), which After reads.
//
// Items of the audit table:
//
//	pk "rec#"+ID        sk "-"   a record: "record" its JSON as appended; once
//	                             sequenced, seq, hash and "canonical" instead
//	pk "head"           sk "-"   the trail's head: seq, hash
//	pk "shead#"+session sk "-"   a session's head: hash
type AuditLog struct{ db *DB }

var (
	_ audit.Sink   = AuditLog{}
	_ audit.Reader = AuditLog{}
)

// Audit returns the audit trail.
func (db *DB) Audit() AuditLog { return AuditLog{db} }

const (
	headPK = "head"
	// maxRecordBytes bounds a record's JSON: DynamoDB's item limit is 400
	// KB, and a sequenced item holds the record twice (as appended and
	// canonical).
	maxRecordBytes = 180 << 10
	// seqBucket is how many sequenced records share an index partition.
	seqBucket = 1000
	// sequenceChunk is how many records one transaction sequences: with
	// the head and up to one session head per record it stays within
	// TransactWriteItems' 100 items.
	sequenceChunk = 49
)

func recordPK(id string) string           { return "rec#" + id }
func sessionHeadPK(id string) string      { return "shead#" + id }
func seqPartition(seq int64) string       { return "seq#" + strconv.FormatInt(seq/seqBucket, 10) }
func seqSortKey(seq int64) string         { return fmt.Sprintf("%020d", seq) }
func errAudit(id string, err error) error { return fmt.Errorf("append audit record %s: %w", id, err) }

// Append implements audit.Sink. The record is durable when it returns; its
// Seq is assigned later, by Sequence.
func (l AuditLog) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if r.ID == "" {
		return audit.Record{}, errAudit(r.ID, errors.New("record has no ID"))
	}
	r.Seq, r.Prev, r.SessionPrev, r.Hash = 0, "", "", ""
	data, err := json.Marshal(r)
	if err != nil {
		return audit.Record{}, errAudit(r.ID, err)
	}
	if len(data) > maxRecordBytes {
		return audit.Record{}, errAudit(r.ID, fmt.Errorf("record is %d bytes, more than %d", len(data), maxRecordBytes))
	}
	it := &item{m: key(recordPK(r.ID), "-")}
	it.setS("record", string(data))
	_, err = l.db.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(l.db.tables.Audit),
		Item:                it.m,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if conditionFailed(err) {
		return audit.Record{}, errAudit(r.ID, errors.New("a record with this ID exists already"))
	}
	if err != nil {
		return audit.Record{}, errAudit(r.ID, err)
	}
	return r, nil
}

// DecodeAppended decodes a record item as Append wrote it, such as the new
// image of a stream event.
func DecodeAppended(m map[string]types.AttributeValue) (audit.Record, error) {
	it := &item{m: m}
	data := it.s("record")
	if it.err != nil || data == "" {
		return audit.Record{}, fmt.Errorf("not an audit record item (pk %q)", it.s(awsconfig.AttrPK))
	}
	var r audit.Record
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return audit.Record{}, fmt.Errorf("audit record item %q: %w", it.s(awsconfig.AttrPK), err)
	}
	return r, nil
}

// Sequence gives records their place in the trail, in the order given,
// and returns how many it sequenced; records sequenced before (a stream
// delivers at least once) are skipped.
func (l AuditLog) Sequence(ctx context.Context, recs []audit.Record) (int, error) {
	seen := make(map[string]bool, len(recs))
	recs = slices.DeleteFunc(slices.Clone(recs), func(r audit.Record) bool {
		dup := seen[r.ID]
		seen[r.ID] = true
		return dup
	})
	done := 0
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), sequenceChunk)]
		recs = recs[len(chunk):]
		n, err := l.sequence(ctx, chunk)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// sequence sequences at most sequenceChunk records in one transaction,
// starting over when another sequencer moved a head meanwhile.
func (l AuditLog) sequence(ctx context.Context, recs []audit.Record) (int, error) {
	for attempt := 0; len(recs) > 0; attempt++ {
		if attempt == maxAttempts {
			return 0, ErrContended
		}
		if attempt > 0 {
			backoff(ctx, attempt)
		}
		recs, err := l.unsequenced(ctx, recs)
		if err != nil || len(recs) == 0 {
			return 0, err
		}
		items, err := l.link(ctx, recs)
		if err != nil {
			return 0, err
		}
		failed, err := l.db.transact(ctx, items)
		switch {
		case err == nil:
			return len(recs), nil
		case failed >= 0:
			// A head moved, or a record was sequenced meanwhile: another
			// sequencer came first.
		default:
			return 0, fmt.Errorf("sequence audit records: %w", err)
		}
	}
	return 0, nil
}

// unsequenced returns the records of recs that exist and have no Seq yet,
// with strongly consistent reads.
func (l AuditLog) unsequenced(ctx context.Context, recs []audit.Record) ([]audit.Record, error) {
	keys := make([]map[string]types.AttributeValue, len(recs))
	for i, r := range recs {
		keys[i] = key(recordPK(r.ID), "-")
	}
	waiting := map[string]bool{}
	err := l.db.batchGet(ctx, l.db.tables.Audit, keys, "pk, seq", func(it *item) {
		if it.m["seq"] == nil {
			waiting[it.s(awsconfig.AttrPK)] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read audit records to sequence: %w", err)
	}
	return slices.DeleteFunc(recs, func(r audit.Record) bool { return !waiting[recordPK(r.ID)] }), nil
}

// link reads the heads and returns the transaction that sequences recs:
// the head's update first, then one update per record, then the session
// heads.
func (l AuditLog) link(ctx context.Context, recs []audit.Record) ([]types.TransactWriteItem, error) {
	head, err := l.readHead(ctx, headPK)
	if err != nil {
		return nil, err
	}
	seq, prev := head.n("seq"), head.s("hash")
	if head.err != nil {
		return nil, fmt.Errorf("audit head: %w", head.err)
	}
	table := aws.String(l.db.tables.Audit)
	sessions := map[string]string{} // session -> head hash as read
	current := map[string]string{}  // session -> head hash as linked
	var order []string
	items := []types.TransactWriteItem{{}}
	for _, r := range recs {
		if r.Session != "" {
			if _, ok := sessions[r.Session]; !ok {
				h, err := l.readHead(ctx, sessionHeadPK(r.Session))
				if err != nil {
					return nil, err
				}
				sessions[r.Session], current[r.Session] = h.s("hash"), h.s("hash")
				order = append(order, r.Session)
			}
		}
		seq++
		r.Seq = seq
		canonical, err := audit.Link(&r, prev, current[r.Session])
		if err != nil {
			return nil, fmt.Errorf("link audit record %s: %w", r.ID, err)
		}
		prev = r.Hash
		if r.Session != "" {
			current[r.Session] = r.Hash
		}
		// A Put of the whole item rather than an Update, which some
		// emulators leave out of the index.
		seqd := &item{m: key(recordPK(r.ID), "-")}
		seqd.setN("seq", seq)
		seqd.setS("hash", r.Hash)
		seqd.setS("canonical", string(canonical))
		seqd.setS(awsconfig.AttrGSI1PK, seqPartition(seq))
		seqd.setS(awsconfig.AttrGSI1SK, seqSortKey(seq))
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:           table,
			Item:                seqd.m,
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(seq)"),
		}})
	}
	items[0] = types.TransactWriteItem{Update: headUpdate(table, headPK, head.s("hash"), seq, prev)}
	for _, s := range order {
		items = append(items, types.TransactWriteItem{Update: headUpdate(table, sessionHeadPK(s), sessions[s], -1, current[s])})
	}
	return items, nil
}

// headUpdate moves a head from hash to (toSeq, toHash) on the condition
// that it has not moved (a hash names its position: a record's hash covers
// its Seq and its predecessor's hash); a toSeq of -1 leaves the seq out.
func headUpdate(table *string, pk, hash string, toSeq int64, toHash string) *types.Update {
	u := &types.Update{
		TableName:                 table,
		Key:                       key(pk, "-"),
		UpdateExpression:          aws.String("SET #hash = :to"),
		ExpressionAttributeNames:  map[string]string{"#hash": "hash"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":to": str(toHash)},
		ConditionExpression:       aws.String("attribute_not_exists(#hash)"),
	}
	if hash != "" {
		u.ConditionExpression = aws.String("#hash = :from")
		u.ExpressionAttributeValues[":from"] = str(hash)
	}
	if toSeq >= 0 {
		u.UpdateExpression = aws.String("SET #hash = :to, seq = :toseq")
		u.ExpressionAttributeValues[":toseq"] = num(toSeq)
	}
	return u
}

// readHead reads a head item with a strongly consistent read; a head not
// written yet reads as zero.
func (l AuditLog) readHead(ctx context.Context, pk string) (*item, error) {
	out, err := l.db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.db.tables.Audit),
		Key:            key(pk, "-"),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read audit head %s: %w", pk, err)
	}
	if out.Item == nil {
		return &item{m: map[string]types.AttributeValue{}}, nil
	}
	return &item{m: out.Item}, nil
}

// Latest implements audit.Reader: the Seq of the newest sequenced record.
func (l AuditLog) Latest(ctx context.Context) (int64, error) {
	head, err := l.readHead(ctx, headPK)
	if err != nil {
		return 0, err
	}
	seq := head.n("seq")
	return seq, head.err
}

// After implements audit.Reader: sequenced records in Seq order. The index
// is updated a moment after the transaction that sequenced a record, so
// After stops before the first Seq it cannot see yet rather than skip it.
func (l AuditLog) After(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	latest, err := l.Latest(ctx)
	if err != nil || limit <= 0 {
		return nil, err
	}
	var out []audit.Record
	next := after + 1
	for next <= latest && len(out) < limit {
		// One page of next's index partition, from next on; each round
		// takes at least one record or ends.
		page, err := l.db.client.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(l.db.tables.Audit),
			IndexName:              aws.String(awsconfig.IndexGSI1),
			KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk >= :from"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":p": str(seqPartition(next)), ":from": str(seqSortKey(next)),
			},
			Limit: aws.Int32(int32(min(limit-len(out), seqBucket))),
		})
		if err != nil {
			return nil, fmt.Errorf("read audit records after %d: %w", after, err)
		}
		if len(page.Items) == 0 {
			return out, nil // next is not visible yet
		}
		for _, m := range page.Items {
			it := &item{m: m}
			seq := it.n("seq")
			if seq != next {
				return out, nil // next is not visible yet
			}
			r, err := audit.DecodeCanonical(it.s("canonical"))
			if err != nil || it.err != nil {
				return nil, fmt.Errorf("decode audit record %d: %w", seq, errors.Join(it.err, err))
			}
			r.Seq, r.Hash = seq, it.s("hash")
			out = append(out, r)
			next++
		}
	}
	return out, nil
}
