package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v4"
)

// withCreateHostPath writes create_host_path: true into every bind mount
// of out (compose-go's YAML or JSON rendering of a project) that has a bind
// section without it. compose-go omits the field when it is true (its
// default), so "bind: {}" would lose what docker compose config prints and
// what an older compose reading the output needs to create a missing
// source directory. The edit is on the document's structure, not its text.
func withCreateHostPath(out []byte, asJSON bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("reading the rendered project: %w", err)
	}
	if len(doc.Content) == 0 || !markBinds(doc.Content[0]) {
		return out, nil
	}
	var b bytes.Buffer
	if asJSON {
		var flat bytes.Buffer
		if err := writeJSON(&flat, doc.Content[0]); err != nil {
			return nil, err
		}
		if err := json.Indent(&b, flat.Bytes(), "", "  "); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// get returns the value of key in mapping node m.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func markBinds(root *yaml.Node) bool {
	services := get(root, "services")
	if services == nil || services.Kind != yaml.MappingNode {
		return false
	}
	changed := false
	for i := 1; i < len(services.Content); i += 2 {
		vols := get(services.Content[i], "volumes")
		if vols == nil || vols.Kind != yaml.SequenceNode {
			continue
		}
		for _, v := range vols.Content {
			bind := get(v, "bind")
			if t := get(v, "type"); t == nil || t.Value != "bind" || bind == nil || bind.Kind != yaml.MappingNode || get(bind, "create_host_path") != nil {
				continue
			}
			bind.Style = 0 // block, as docker compose prints it
			bind.Content = append(bind.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "create_host_path"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
			changed = true
		}
	}
	return changed
}

// writeJSON renders a node read from JSON back as JSON, keeping the order
// of keys.
func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := writeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float", "!!bool":
			b.WriteString(n.Value)
		case "!!null":
			b.WriteString("null")
		default:
			s, _ := json.Marshal(n.Value)
			b.Write(s)
		}
	default:
		return fmt.Errorf("unexpected node kind %v in the rendered project", n.Kind)
	}
	return nil
}
