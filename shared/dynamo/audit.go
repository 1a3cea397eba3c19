package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
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
//	pk "digest"         sk Seq   a signed digest (audit.Digest as JSON)
//
// A sequenced record with a session is also indexed by session in gsi2
// (gsi2pk "sess#" + session, gsi2sk Seq), which Query reads.
type AuditLog struct{ db *DB }

var (
	_ audit.Sink         = AuditLog{}
	_ audit.Reader       = AuditLog{}
	_ audit.StoredReader = AuditLog{}
	_ audit.Querier      = AuditLog{}
	_ audit.DigestStore  = AuditLog{}
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
func sessionPartition(id string) string   { return "sess#" + id }
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
	it := &ddb.Item{M: ddb.Key(recordPK(r.ID), "-")}
	it.SetS("record", string(data))
	_, err = l.db.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(l.db.tables.Audit),
		Item:                it.M,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if ddb.ConditionFailed(err) {
		// The SDK retries a write whose answer it did not get, and the
		// first try may have written: the same record is appended.
		if same, rerr := l.holds(ctx, r.ID, string(data)); rerr != nil || !same {
			return audit.Record{}, errAudit(r.ID, errors.Join(errors.New("a record with this ID exists already"), rerr))
		}
		return r, nil
	}
	if err != nil {
		return audit.Record{}, errAudit(r.ID, err)
	}
	return r, nil
}

// holds reports whether the record id is stored as appended with data
// (a strongly consistent read).
func (l AuditLog) holds(ctx context.Context, id, data string) (bool, error) {
	out, err := l.db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.db.tables.Audit),
		Key:            ddb.Key(recordPK(id), "-"),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, err
	}
	it := &ddb.Item{M: out.Item}
	return out.Item != nil && it.S("record") == data, nil
}

// AppendedRecord decodes a record as Append stored it, from an item's pk
// and "record" attributes (as a stream event's new image carries them).
// ok is false for any other item: a head, a digest, a lease, or a record
// already sequenced (which has no "record" attribute any more).
func AppendedRecord(pk, data string) (r audit.Record, ok bool, err error) {
	if !strings.HasPrefix(pk, recordPK("")) || data == "" {
		return audit.Record{}, false, nil
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return audit.Record{}, false, fmt.Errorf("audit record item %q: %w", pk, err)
	}
	if r.ID == "" || recordPK(r.ID) != pk {
		return audit.Record{}, false, fmt.Errorf("audit record item %q holds record %q", pk, r.ID)
	}
	return r, true, nil
}

// Lease takes the lease name for holder until ttl from now, if no one else
// holds it, and reports whether it did. release gives it back. The
// archiver's concurrent invocations (one per stream shard) take turns so,
// rather than write competing archive batches.
func (l AuditLog) Lease(ctx context.Context, name, holder string, ttl time.Duration) (release func(context.Context), ok bool, err error) {
	now := l.db.now()
	it := &ddb.Item{M: ddb.Key("lease#"+name, "-")}
	it.SetS("holder", holder)
	it.SetN("until", now.Add(ttl).UnixMilli())
	_, err = l.db.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(l.db.tables.Audit),
		Item:                      it.M,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #until < :now"),
		ExpressionAttributeNames:  map[string]string{"#until": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": ddb.Num(now.UnixMilli())},
	})
	if ddb.ConditionFailed(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("take lease %s: %w", name, err)
	}
	release = func(ctx context.Context) {
		// Not a delete: the functions may not delete from the audit table.
		_, _ = l.db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(l.db.tables.Audit),
			Key:                       ddb.Key("lease#"+name, "-"),
			UpdateExpression:          aws.String("SET #until = :zero"),
			ConditionExpression:       aws.String("holder = :me"),
			ExpressionAttributeNames:  map[string]string{"#until": "until"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": ddb.Num(0), ":me": ddb.Str(holder)},
		})
	}
	return release, true, nil
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
		if attempt == ddb.MaxAttempts {
			return 0, ddb.ErrContended
		}
		if attempt > 0 {
			ddb.Backoff(ctx, attempt)
		}
		recs, err := l.unsequenced(ctx, recs)
		if err != nil || len(recs) == 0 {
			return 0, err
		}
		items, err := l.link(ctx, recs)
		if err != nil {
			return 0, err
		}
		failed, err := ddb.Transact(ctx, l.db.client, items)
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
		keys[i] = ddb.Key(recordPK(r.ID), "-")
	}
	waiting := map[string]bool{}
	err := ddb.BatchGet(ctx, l.db.client, l.db.tables.Audit, keys, "pk, seq", func(it *ddb.Item) {
		if it.M["seq"] == nil {
			waiting[it.S(awsconfig.AttrPK)] = true
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
	seq, prev := head.N("seq"), head.S("hash")
	if head.Err != nil {
		return nil, fmt.Errorf("audit head: %w", head.Err)
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
				sessions[r.Session], current[r.Session] = h.S("hash"), h.S("hash")
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
		seqd := &ddb.Item{M: ddb.Key(recordPK(r.ID), "-")}
		seqd.SetN("seq", seq)
		seqd.SetS("hash", r.Hash)
		seqd.SetS("canonical", string(canonical))
		seqd.SetS(awsconfig.AttrGSI1PK, seqPartition(seq))
		seqd.SetS(awsconfig.AttrGSI1SK, seqSortKey(seq))
		if r.Session != "" {
			seqd.SetS("session", r.Session)
			seqd.SetS(awsconfig.AttrGSI2PK, sessionPartition(r.Session))
			seqd.SetS(awsconfig.AttrGSI2SK, seqSortKey(seq))
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:           table,
			Item:                seqd.M,
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(seq)"),
		}})
	}
	items[0] = types.TransactWriteItem{Update: headUpdate(table, headPK, head.S("hash"), seq, prev)}
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
		Key:                       ddb.Key(pk, "-"),
		UpdateExpression:          aws.String("SET #hash = :to"),
		ExpressionAttributeNames:  map[string]string{"#hash": "hash"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":to": ddb.Str(toHash)},
		ConditionExpression:       aws.String("attribute_not_exists(#hash)"),
	}
	if hash != "" {
		u.ConditionExpression = aws.String("#hash = :from")
		u.ExpressionAttributeValues[":from"] = ddb.Str(hash)
	}
	if toSeq >= 0 {
		u.UpdateExpression = aws.String("SET #hash = :to, seq = :toseq")
		u.ExpressionAttributeValues[":toseq"] = ddb.Num(toSeq)
	}
	return u
}

// readHead reads a head item with a strongly consistent read; a head not
// written yet reads as zero.
func (l AuditLog) readHead(ctx context.Context, pk string) (*ddb.Item, error) {
	out, err := l.db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.db.tables.Audit),
		Key:            ddb.Key(pk, "-"),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read audit head %s: %w", pk, err)
	}
	if out.Item == nil {
		return &ddb.Item{M: map[string]types.AttributeValue{}}, nil
	}
	return &ddb.Item{M: out.Item}, nil
}

// Latest implements audit.Reader: the Seq of the newest sequenced record.
func (l AuditLog) Latest(ctx context.Context) (int64, error) {
	head, err := l.readHead(ctx, headPK)
	if err != nil {
		return 0, err
	}
	seq := head.N("seq")
	return seq, head.Err
}

// After implements audit.Reader: sequenced records in Seq order.
func (l AuditLog) After(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	var out []audit.Record
	err := l.walk(ctx, after, limit, func(it *ddb.Item) (bool, error) {
		r, err := decodeSequenced(it)
		out = append(out, r)
		return len(out) < limit, err
	})
	return out, err
}

// walk calls fn with each sequenced record item after after, in Seq
// order, up to the newest, until fn returns false or an error. pageSize
// bounds each read (1 to seqBucket). It ends at the first Seq it cannot
// see — past the newest, or not in the index yet (the index is updated a
// moment after the transaction that sequenced a record): a gap is never
// skipped.
func (l AuditLog) walk(ctx context.Context, after int64, pageSize int, fn func(*ddb.Item) (bool, error)) error {
	if pageSize <= 0 {
		return nil
	}
	pageSize = min(pageSize, seqBucket)
	next := after + 1
	for {
		// One page of next's index partition, from next on; each round
		// takes at least one record or ends.
		page, err := l.db.client.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(l.db.tables.Audit),
			IndexName:              aws.String(awsconfig.IndexGSI1),
			KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk >= :from"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":p": ddb.Str(seqPartition(next)), ":from": ddb.Str(seqSortKey(next)),
			},
			Limit: aws.Int32(int32(pageSize)),
		})
		if err != nil {
			return fmt.Errorf("read audit records after %d: %w", next-1, err)
		}
		if len(page.Items) == 0 {
			return nil // next is not visible yet
		}
		for _, m := range page.Items {
			it := &ddb.Item{M: m}
			if it.N("seq") != next {
				return nil // next is not visible yet
			}
			more, err := fn(it)
			if err != nil || !more {
				return err
			}
			next++
		}
	}
}

// decodeSequenced decodes a sequenced record item.
func decodeSequenced(it *ddb.Item) (audit.Record, error) {
	seq := it.N("seq")
	r, err := audit.DecodeCanonical(it.S("canonical"))
	if err != nil || it.Err != nil {
		return audit.Record{}, fmt.Errorf("decode audit record %d: %w", seq, errors.Join(it.Err, err))
	}
	r.Seq, r.Hash = seq, it.S("hash")
	return r, nil
}

// EachStored implements audit.StoredReader.
func (l AuditLog) EachStored(ctx context.Context, after int64, fn func(audit.StoredRecord) error) error {
	return l.walk(ctx, after, seqBucket, func(it *ddb.Item) (bool, error) {
		s := audit.StoredRecord{Seq: it.N("seq"), Session: it.S("session"), Canonical: []byte(it.S("canonical")), Hash: it.S("hash")}
		if it.Err != nil {
			return false, fmt.Errorf("audit record %d: %w", s.Seq, it.Err)
		}
		return true, fn(s)
	})
}

// Query implements audit.Querier. A session's records are read from their
// index (gsi2); other filters read the trail in order and keep what
// matches.
func (l AuditLog) Query(ctx context.Context, f audit.Filter, after int64, limit int) ([]audit.Record, error) {
	var out []audit.Record
	keep := func(it *ddb.Item) (bool, error) {
		r, err := decodeSequenced(it)
		if err != nil {
			return false, err
		}
		if f.Match(&r) {
			out = append(out, r)
		}
		return len(out) < limit, nil
	}
	if limit <= 0 {
		return nil, nil
	}
	if f.Session == "" {
		return out, l.walk(ctx, after, seqBucket, keep)
	}
	p := dynamodb.NewQueryPaginator(l.db.client, &dynamodb.QueryInput{
		TableName:              aws.String(l.db.tables.Audit),
		IndexName:              aws.String(awsconfig.IndexGSI2),
		KeyConditionExpression: aws.String("gsi2pk = :p AND gsi2sk > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": ddb.Str(sessionPartition(f.Session)), ":after": ddb.Str(seqSortKey(after)),
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query audit records of session %s: %w", f.Session, err)
		}
		for _, m := range page.Items {
			if more, err := keep(&ddb.Item{M: m}); err != nil || !more {
				return out, err
			}
		}
	}
	return out, nil
}

const digestPK = "digest"

// AppendDigest implements audit.DigestStore: d must follow the newest
// digest, which one transaction checks as it stores d.
func (l AuditLog) AppendDigest(ctx context.Context, d audit.Digest) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode digest %d: %w", d.Seq, err)
	}
	it := &ddb.Item{M: ddb.Key(digestPK, seqSortKey(d.Seq))}
	it.SetS("digest", string(data))
	table := aws.String(l.db.tables.Audit)
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: table, Item: it.M, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}}
	if d.Seq > 1 {
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: table, Key: ddb.Key(digestPK, seqSortKey(d.Seq-1)), ConditionExpression: aws.String("attribute_exists(pk)"),
		}})
	}
	if failed, err := ddb.Transact(ctx, l.db.client, items); failed >= 0 {
		return fmt.Errorf("digest %d does not follow the newest digest", d.Seq)
	} else if err != nil {
		return fmt.Errorf("store digest %d: %w", d.Seq, err)
	}
	return nil
}

// LastDigest implements audit.DigestStore.
func (l AuditLog) LastDigest(ctx context.Context) (audit.Digest, error) {
	ds, err := l.digests(ctx, 1)
	if err != nil {
		return audit.Digest{}, err
	}
	if len(ds) == 0 {
		return audit.Digest{}, audit.ErrNoDigest
	}
	return ds[0], nil
}

// Digests implements audit.DigestStore.
func (l AuditLog) Digests(ctx context.Context) ([]audit.Digest, error) { return l.digests(ctx, 0) }

// digests reads the digests in order, or the newest n when n > 0.
func (l AuditLog) digests(ctx context.Context, n int) ([]audit.Digest, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(l.db.tables.Audit),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.Str(digestPK)},
		ConsistentRead:            aws.Bool(true),
	}
	if n > 0 {
		in.ScanIndexForward, in.Limit = aws.Bool(false), aws.Int32(int32(n))
	}
	var out []audit.Digest
	for {
		page, err := l.db.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read digests: %w", err)
		}
		for _, m := range page.Items {
			it := &ddb.Item{M: m}
			var d audit.Digest
			if err := json.Unmarshal([]byte(it.S("digest")), &d); err != nil || it.Err != nil {
				return nil, fmt.Errorf("decode digest item %s: %w", it.S(awsconfig.AttrSK), errors.Join(it.Err, err))
			}
			out = append(out, d)
		}
		if page.LastEvaluatedKey == nil || n > 0 && len(out) >= n {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
