// Package ddb holds what the DynamoDB adapters share: reading and writing
// items attribute by attribute, and the calls they make with retries.
package ddb

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/sortable"
)

// Item is a DynamoDB item under construction or being read. Reads record
// the first malformed attribute in err, so that a decoder reads every
// field and checks once.
type Item struct {
	M   map[string]types.AttributeValue
	Err error
}

// FormatTime keeps times so that text order is time order (sort keys).
func FormatTime(t time.Time) (string, error) { return sortable.Time(t) }

func (it *Item) SetS(name, v string) {
	if v != "" {
		it.M[name] = &types.AttributeValueMemberS{Value: v}
	}
}

func (it *Item) SetB(name string, v []byte) {
	if v != nil {
		it.M[name] = &types.AttributeValueMemberB{Value: v}
	}
}

func (it *Item) SetBool(name string, v bool) {
	if v {
		it.M[name] = &types.AttributeValueMemberBOOL{Value: true}
	}
}

func (it *Item) SetN(name string, v int64) { it.M[name] = Num(v) }

func (it *Item) SetTime(name string, t time.Time) {
	s, err := FormatTime(t)
	if err != nil && it.Err == nil {
		it.Err = err
	}
	it.M[name] = &types.AttributeValueMemberS{Value: s}
}

// setMap stores a string map as a JSON object; nil stays absent and an
// empty map is "{}", so that the two read back as they were. (JSON rather
// than an M: emulators disagree on empty maps.)
func (it *Item) SetMap(name string, v map[string]string) {
	if v == nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil && it.Err == nil {
		it.Err = err
	}
	it.M[name] = &types.AttributeValueMemberS{Value: string(data)}
}

func (it *Item) Fail(name, want string) {
	if it.Err == nil {
		it.Err = fmt.Errorf("attribute %s is not %s", name, want)
	}
}

func (it *Item) S(name string) string {
	switch v := it.M[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	}
	it.Fail(name, "a string")
	return ""
}

func (it *Item) B(name string) []byte {
	switch v := it.M[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberB:
		return v.Value
	}
	it.Fail(name, "binary")
	return nil
}

func (it *Item) Bool(name string) bool {
	switch v := it.M[name].(type) {
	case nil:
		return false
	case *types.AttributeValueMemberBOOL:
		return v.Value
	}
	it.Fail(name, "a boolean")
	return false
}

func (it *Item) N(name string) int64 {
	switch v := it.M[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			it.Fail(name, "an integer")
		}
		return n
	}
	it.Fail(name, "a number")
	return 0
}

// SetF sets a number that need not be whole, in plain decimal notation.
func (it *Item) SetF(name string, v float64) {
	it.M[name] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'f', -1, 64)}
}

func (it *Item) F(name string) float64 {
	switch v := it.M[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			it.Fail(name, "a number")
		}
		return f
	}
	it.Fail(name, "a number")
	return 0
}

func (it *Item) Time(name string) time.Time {
	s := it.S(name)
	t, err := sortable.ParseTime(s)
	if err != nil {
		it.Fail(name, "a time")
	}
	return t
}

func (it *Item) StringMap(name string) map[string]string {
	if it.M[name] == nil {
		return nil
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(it.S(name)), &out); err != nil || out == nil {
		it.Fail(name, "a JSON object of strings")
	}
	return out
}
