package pricing

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
)

// The providers a table prices.
const (
	Anthropic = "anthropic" // the Anthropic Messages API
	OpenAI    = "openai"    // the OpenAI Responses and Chat Completions APIs
	Bedrock   = "bedrock"   // Amazon Bedrock, by Bedrock model ID
)

// providers is every provider a price file may name, sorted.
var providers = []string{Anthropic, Bedrock, OpenAI}

// Table is a price table: per provider, model names (IDs and aliases)
// mapped to prices. A Table is immutable once built and safe for
// concurrent use.
type Table struct {
	providers map[string]map[string]*entry
}

// entry is one model of a table. For bedrock, global is the price through
// a global. inference profile and regional the price of any other
// invocation; elsewhere the two are the same.
type entry struct {
	id       string
	aliases  []string
	global   Price
	regional Price
}

//go:embed prices.yaml
var defaultFile []byte

var defaultTable = sync.OnceValues(func() (*Table, error) {
	return Load("prices.yaml", defaultFile)
})

// Default returns the table embedded from prices.yaml, parsed on first
// use. The file is checked by the package tests; were it ever broken,
// Default would be an empty table, in which every model is unknown and so
// every call refused.
func Default() *Table {
	t, err := defaultTable()
	if err != nil {
		return &Table{}
	}
	return t
}

// Lookup returns the price of model at provider, or false when the table
// does not know the model; an unknown model must not be priced at zero.
// Names match exactly. Bedrock model IDs are normalised first: an ARN of
// a foundation model or a system inference profile is reduced to the ID
// it names, and a cross-region profile prefix (global., us., us-gov., eu.,
// apac., jp., au., ca.) is removed when the prefixed ID is not itself
// listed. A bedrock entry's regional premium applies to every invocation
// except through a global. profile.
func (t *Table) Lookup(provider, model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	names := t.providers[provider]
	if names == nil {
		return Price{}, false
	}
	if provider != Bedrock {
		if e := names[model]; e != nil {
			return e.global, true
		}
		return Price{}, false
	}
	name, ok := bedrockResource(model)
	if !ok {
		return Price{}, false
	}
	global := strings.HasPrefix(name, "global.")
	e := names[name]
	if e == nil {
		if rest, ok := cutProfilePrefix(name); ok {
			e = names[rest]
		}
	}
	switch {
	case e == nil:
		return Price{}, false
	case global:
		return e.global, true
	default:
		return e.regional, true
	}
}

// profilePrefixes are the prefixes of Bedrock's system-defined cross-region
// inference profiles.
var profilePrefixes = []string{"global.", "us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca."}

func cutProfilePrefix(name string) (string, bool) {
	for _, p := range profilePrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return rest, true
		}
	}
	return "", false
}

// bedrockResource reduces a Bedrock ARN of a foundation model or an
// inference profile to the ID in it; any other name is returned as it is.
// An ARN of another kind (an application inference profile, a
// provisioned model) names no model: false.
func bedrockResource(model string) (string, bool) {
	if !strings.HasPrefix(model, "arn:") {
		return model, true
	}
	// arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID; the ID may hold colons.
	parts := strings.SplitN(model, ":", 6)
	if len(parts) != 6 || parts[2] != "bedrock" {
		return "", false
	}
	typ, id, ok := strings.Cut(parts[5], "/")
	if !ok || id == "" || (typ != "foundation-model" && typ != "inference-profile") {
		return "", false
	}
	return id, true
}

// Merge returns a table with the entries of over laid on those of t: an
// entry of over replaces t's entry of the same model ID and inherits its
// aliases, and every name over gives, ID or alias, means over's entry.
// Neither t nor over changes.
func (t *Table) Merge(over *Table) *Table {
	out := &Table{providers: map[string]map[string]*entry{}}
	if t != nil {
		for p, names := range t.providers {
			out.providers[p] = make(map[string]*entry, len(names))
			for n, e := range names {
				out.providers[p][n] = e
			}
		}
	}
	if over == nil {
		return out
	}
	for p, names := range over.providers {
		dst := out.providers[p]
		if dst == nil {
			dst = map[string]*entry{}
			out.providers[p] = dst
		}
		for _, e := range distinct(names) {
			ne := *e
			if old := dst[e.id]; old != nil && old.id == e.id {
				for n, oe := range dst {
					if oe == old && names[n] == nil {
						ne.aliases = append(slices.Clip(ne.aliases), n)
						dst[n] = &ne
					}
				}
				slices.Sort(ne.aliases)
				ne.aliases = slices.DeleteFunc(slices.Compact(ne.aliases), func(a string) bool { return a == ne.id })
			}
			for _, n := range append([]string{e.id}, e.aliases...) {
				dst[n] = &ne
			}
		}
	}
	return out
}

// distinct lists the entries of a provider's names once each, by ID.
func distinct(names map[string]*entry) []*entry {
	var out []*entry
	for n, e := range names {
		if n == e.id {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.id, b.id) })
	return out
}

// Models lists the names the table knows at provider, IDs and aliases,
// sorted.
func (t *Table) Models(provider string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for n := range t.providers[provider] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
