package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardenhq/warden/shared/audit"
)

var _ audit.PrunableTrail = (*AuditLog)(nil)

// pruneChunk is how many records one pruning transaction deletes: small
// enough that the audit writer, which waits for it, is not held up long.
const pruneChunk = 2000

const anchorKey = "audit-pruned-through"

// FirstAtOrAfter implements audit.PrunableTrail. It scans from the front
// of the trail, which after pruning holds only what is still kept, so the
// scan is about as long as what the next Prune deletes.
func (l *AuditLog) FirstAtOrAfter(ctx context.Context, t time.Time, limit int64) (int64, error) {
	at, err := formatTime(t)
	if err != nil {
		return 0, err
	}
	var seq int64
	err = l.db.r.QueryRowContext(ctx, `SELECT seq FROM audit WHERE seq <= ? AND time >= ? ORDER BY seq LIMIT 1`, limit, at).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return limit + 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find the first record at or after %s: %w", at, err)
	}
	return seq, nil
}

// DigestBoundary implements audit.PrunableTrail.
func (l *AuditLog) DigestBoundary(ctx context.Context, seq int64) (int64, error) {
	var to int64
	if err := l.db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(to_seq), 0) FROM audit_digests WHERE to_seq <= ?`, seq).Scan(&to); err != nil {
		return 0, fmt.Errorf("find the digest ending at or before %d: %w", seq, err)
	}
	return to, nil
}

// Prune implements audit.PrunableTrail, in transactions of pruneChunk
// records. Each keeps, before deleting, the hash of the last deleted
// record of every session in its range (audit_session_heads) and of the
// last deleted record (the anchor), so that a crash between two leaves a
// trail that verifies.
func (l *AuditLog) Prune(ctx context.Context, through int64) (int64, error) {
	var total int64
	for {
		var n int64
		err := l.db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
			var first sql.NullInt64
			if err := c.QueryRowContext(ctx, `SELECT MIN(seq) FROM audit`).Scan(&first); err != nil {
				return err
			}
			if !first.Valid || first.Int64 > through {
				return nil
			}
			to := min(through, first.Int64+pruneChunk-1)
			var a audit.Anchor
			if err := c.QueryRowContext(ctx, `SELECT seq, hash FROM audit WHERE seq = ?`, to).Scan(&a.Seq, &a.Hash); err != nil {
				return fmt.Errorf("read record %d: %w", to, err)
			}
			// SQLite takes the bare columns seq and hash from the row that
			// has the MAX.
			if _, err := c.ExecContext(ctx, `INSERT INTO audit_session_heads (session, seq, hash)
				SELECT session, MAX(seq), hash FROM audit WHERE seq BETWEEN ? AND ? AND session <> '' GROUP BY session
				ON CONFLICT (session) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, first.Int64, to); err != nil {
				return fmt.Errorf("keep session heads: %w", err)
			}
			anchor, _ := json.Marshal(a)
			if _, err := c.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, anchorKey, anchor); err != nil {
				return fmt.Errorf("keep the anchor: %w", err)
			}
			res, err := c.ExecContext(ctx, `DELETE FROM audit WHERE seq BETWEEN ? AND ?`, first.Int64, to)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune audit records: %w", err)
		}
		if n == 0 {
			return total, nil
		}
	}
}

// queryer is a connection or a pool.
// readAnchor reads the anchor without the session heads; a zero Anchor if
// nothing was pruned.
func readAnchor(ctx context.Context, q queryer) (audit.Anchor, error) {
	var a audit.Anchor
	var data []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, anchorKey).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("read the audit anchor: %w", err)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("decode the audit anchor: %w", err)
	}
	return a, nil
}

// Pruned implements audit.PrunableTrail.
func (l *AuditLog) Pruned(ctx context.Context) (audit.Anchor, error) {
	a, err := readAnchor(ctx, l.db.r)
	if err != nil || a.Seq == 0 {
		return a, err
	}
	rows, err := l.db.r.QueryContext(ctx, `SELECT session, hash FROM audit_session_heads`)
	if err != nil {
		return a, fmt.Errorf("read session heads: %w", err)
	}
	defer rows.Close()
	a.Sessions = map[string]string{}
	for rows.Next() {
		var s, h string
		if err := rows.Scan(&s, &h); err != nil {
			return a, fmt.Errorf("read session heads: %w", err)
		}
		a.Sessions[s] = h
	}
	return a, rows.Err()
}
