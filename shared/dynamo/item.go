package dynamo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/sortable"
)

// item is a DynamoDB item under construction or being read. Reads record
// the first malformed attribute in err, so that a decoder reads every
// field and checks once.
type item struct {
	m   map[string]types.AttributeValue
	err error
}

// formatTime keeps times so that text order is time order (sort keys).
func formatTime(t time.Time) (string, error) { return sortable.Time(t) }

func (it *item) setS(name, v string) {
	if v != "" {
		it.m[name] = &types.AttributeValueMemberS{Value: v}
	}
}

func (it *item) setB(name string, v []byte) {
	if v != nil {
		it.m[name] = &types.AttributeValueMemberB{Value: v}
	}
}

func (it *item) setBool(name string, v bool) {
	if v {
		it.m[name] = &types.AttributeValueMemberBOOL{Value: true}
	}
}

func (it *item) setN(name string, v int64) { it.m[name] = num(v) }

func (it *item) setTime(name string, t time.Time) {
	s, err := formatTime(t)
	if err != nil && it.err == nil {
		it.err = err
	}
	it.m[name] = &types.AttributeValueMemberS{Value: s}
}

// setMap stores a string map as a JSON object; nil stays absent and an
// empty map is "{}", so that the two read back as they were. (JSON rather
// than an M: emulators disagree on empty maps.)
func (it *item) setMap(name string, v map[string]string) {
	if v == nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil && it.err == nil {
		it.err = err
	}
	it.m[name] = &types.AttributeValueMemberS{Value: string(data)}
}

func (it *item) fail(name, want string) {
	if it.err == nil {
		it.err = fmt.Errorf("attribute %s is not %s", name, want)
	}
}

func (it *item) s(name string) string {
	switch v := it.m[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	}
	it.fail(name, "a string")
	return ""
}

func (it *item) b(name string) []byte {
	switch v := it.m[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberB:
		return v.Value
	}
	it.fail(name, "binary")
	return nil
}

func (it *item) bool(name string) bool {
	switch v := it.m[name].(type) {
	case nil:
		return false
	case *types.AttributeValueMemberBOOL:
		return v.Value
	}
	it.fail(name, "a boolean")
	return false
}

func (it *item) n(name string) int64 {
	switch v := it.m[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			it.fail(name, "an integer")
		}
		return n
	}
	it.fail(name, "a number")
	return 0
}

func (it *item) time(name string) time.Time {
	s := it.s(name)
	t, err := sortable.ParseTime(s)
	if err != nil {
		it.fail(name, "a time")
	}
	return t
}

func (it *item) stringMap(name string) map[string]string {
	if it.m[name] == nil {
		return nil
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(it.s(name)), &out); err != nil || out == nil {
		it.fail(name, "a JSON object of strings")
	}
	return out
}
