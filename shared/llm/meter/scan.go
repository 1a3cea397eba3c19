package meter

import (
	"bytes"
	"encoding/json"
)

// Cheap scanners over raw JSON text, for the events that are not parsed.
// They rely on one property of JSON: inside a string a quote is always
// escaped, so `"key"` followed by a colon only occurs as a real key.

// valueAt returns the index in data of the value of the first occurrence
// of key (a quoted key, such as `"text"`) at or after from, or -1.
func valueAt(data []byte, key string, from int) (value, next int) {
	for from < len(data) {
		i := bytes.Index(data[from:], []byte(key))
		if i < 0 {
			return -1, len(data)
		}
		k := skipSpace(data, from+i+len(key))
		from += i + len(key)
		if k < len(data) && data[k] == ':' {
			return skipSpace(data, k+1), from
		}
	}
	return -1, len(data)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the string whose
// content starts at i, or len(data) when the string is not closed.
func stringEnd(data []byte, i int) int {
	for {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return len(data)
		}
		q += i
		bs := 0
		for j := q - 1; j >= i && data[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// keyScanner walks the keys of raw JSON text in one pass, at any depth:
// each string followed by a colon is a key. It does not validate; on text
// that is not JSON it still ends.
type keyScanner struct {
	data []byte
	i    int
}

// next returns the next key (without quotes) and the index of its value,
// or false at the end.
func (s *keyScanner) next() (key []byte, value int, ok bool) {
	for s.i < len(s.data) {
		q := bytes.IndexByte(s.data[s.i:], '"')
		if q < 0 {
			break
		}
		start := s.i + q + 1
		end := stringEnd(s.data, start)
		if end >= len(s.data) {
			break
		}
		s.i = end + 1
		if k := skipSpace(s.data, end+1); k < len(s.data) && s.data[k] == ':' {
			s.i = skipSpace(s.data, k+1)
			return s.data[start:end], s.i, true
		}
	}
	s.i = len(s.data)
	return nil, 0, false
}

// stringValue returns the raw length of the string value at v, moving the
// scanner past it; an unclosed string runs to the end. ok is false when
// the value is not a string.
func (s *keyScanner) stringValue(v int) (n int64, ok bool) {
	if v >= len(s.data) || s.data[v] != '"' {
		return 0, false
	}
	end := stringEnd(s.data, v+1)
	s.i = end + 1
	return int64(end - v - 1), true
}

// stringBytes sums the raw (still escaped) lengths of the string values of
// keys in data: the text a delta event carries. A string cut off by the
// end of data counts to the end.
func stringBytes(data []byte, keys ...string) int64 {
	var n int64
	s := keyScanner{data: data}
	for {
		key, v, ok := s.next()
		if !ok {
			return n
		}
		for _, k := range keys {
			if string(key) == k {
				l, _ := s.stringValue(v)
				n += l
				break
			}
		}
	}
}

// firstString returns the first string value of key in data, as raw text.
func firstString(data []byte, key string) []byte {
	v, _ := valueAt(data, key, 0)
	if v < 0 || v >= len(data) || data[v] != '"' {
		return nil
	}
	return data[v+1 : stringEnd(data, v+1)]
}

// lastString returns the string value of the last occurrence of key in
// data, as raw text, or nil.
func lastString(data []byte, key string) []byte {
	for end := len(data); end > 0; {
		i := bytes.LastIndex(data[:end], []byte(key))
		if i < 0 {
			return nil
		}
		end = i
		if v, _ := valueAt(data[i:], key, 0); v >= 0 && i+v < len(data) && data[i+v] == '"' {
			return data[i+v+1 : stringEnd(data, i+v+1)]
		}
	}
	return nil
}

// lastObject decodes into v the object that is the value of the last
// occurrence of key in data. It reads the tail of an event too large to
// parse whole, where the providers put the usage object.
func lastObject(data []byte, key string, v any) bool {
	for end := len(data); end > 0; {
		i := bytes.LastIndex(data[:end], []byte(key))
		if i < 0 {
			return false
		}
		end = i
		k := skipSpace(data, i+len(key))
		if k >= len(data) || data[k] != ':' {
			continue
		}
		k = skipSpace(data, k+1)
		if k >= len(data) || data[k] != '{' {
			continue
		}
		return json.NewDecoder(bytes.NewReader(data[k:])).Decode(v) == nil
	}
	return false
}

// eventType is the event's name, or when it has none the "type" its data
// starts with, as Anthropic and OpenAI write both.
func eventType(ev *event) []byte {
	if len(ev.name) > 0 {
		return ev.name
	}
	head := ev.data[:min(len(ev.data), 256)]
	return firstString(head, `"type"`)
}
