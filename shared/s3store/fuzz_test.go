package s3store

import (
	"strings"
	"testing"
)

// FuzzParseListAnswer feeds arbitrary answers to the ListObjectsV2
// parser: it must not panic, must bound what it reads, and a truncated
// answer it accepts always names its next page.
func FuzzParseListAnswer(f *testing.F) {
	f.Add([]byte(`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>records/a</Key></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>`))
	f.Add([]byte(`<ListBucketResult><Contents><Key>` + strings.Repeat("k", 2000) + `</Key></Contents></ListBucketResult>`))
	f.Add([]byte(`<Error><Code>NoSuchBucket</Code></Error>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><ListBucketResult><Contents><Key>&a;</Key></Contents></ListBucketResult>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ParseListAnswer(body)
		if err != nil {
			return
		}
		if len(body) > maxListBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if *out.IsTruncated && out.NextContinuationToken == nil {
			t.Fatal("truncated without a next page")
		}
		if int(*out.KeyCount) != len(out.Contents) {
			t.Fatalf("KeyCount %d for %d keys", *out.KeyCount, len(out.Contents))
		}
	})
}
