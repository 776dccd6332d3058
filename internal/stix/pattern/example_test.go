package pattern_test

import (
	"fmt"
	"os"

	"github.com/entente-cti/entente/internal/stix/pattern"
)

func Example() {
	p, err := pattern.Parse("[ipv4-addr:value ISSUBSET '198.51.100.0/24'] FOLLOWEDBY [domain-name:value = 'evil.example'] WITHIN 60 SECONDS")
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := pattern.ReadObservations([]byte(`{"type": "bundle", "id": "bundle--0c5c4f3f-2a5e-4b9b-9d0e-8f0b8d7f7a10", "objects": [
	  {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-05-01T10:00:00Z", "last_observed": "2024-05-01T10:00:00Z", "number_observed": 1, "object_refs": ["ipv4-addr--1"]},
	  {"type": "observed-data", "id": "observed-data--2", "first_observed": "2024-05-01T10:00:30Z", "last_observed": "2024-05-01T10:00:30Z", "number_observed": 1, "object_refs": ["domain-name--1"]},
	  {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"},
	  {"type": "domain-name", "id": "domain-name--1", "value": "evil.example"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := pattern.Match(p, obs)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = pattern.WriteMatch(os.Stdout, res)
	// Output:
	// match
	//   [ipv4-addr:value ISSUBSET '198.51.100.0/24'] <- observed-data--1
	//   [domain-name:value = 'evil.example'] <- observed-data--2
}

func ExamplePattern_Disjunction() {
	p, err := pattern.Parse("[url:value = 'http://evil.example/x'] OR [file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f']")
	if err != nil {
		fmt.Println(err)
		return
	}
	comparisons, ok := p.Disjunction()
	fmt.Println(ok)
	for _, c := range comparisons {
		fmt.Println(c.ObjectType, c.Path, c.Op, c.Values)
	}
	// Output:
	// true
	// url value = [http://evil.example/x]
	// file hashes.MD5 = [cead3f77f6cda6ec00f57d76c9a6879f]
}

func ExampleFormatError() {
	src := "[file:size = ]"
	_, err := pattern.Parse(src)
	fmt.Print(pattern.FormatError(src, err))
	// Output:
	// [file:size = ]
	//              ^
	// line 1, column 13: expected a literal after '=' but found ']'
}
