package main

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// stampPath is the files entry the bench adds to the YAML, and stampSource
// the file of the build context it copies: the "one files entry changed"
// scenario changes that file's contents.
const (
	stampPath   = "etc/lkbuild-bench/stamp"
	stampSource = "bench-stamp.txt"
)

// rewriteYAML returns the LinuxKit YAML with every image reference (kernel,
// init, onboot, onshutdown, services, volumes) replaced by mapRef's answer
// and a files entry stampPath copying stampSource from the build context.
func rewriteYAML(src []byte, mapRef func(string) (string, error)) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a LinuxKit YAML mapping")
	}
	top := root.Content[0]
	set := func(n *yaml.Node) error {
		if n == nil || n.Kind != yaml.ScalarNode {
			return nil
		}
		v, err := mapRef(n.Value)
		n.Value = v
		return err
	}
	var files *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i].Value, top.Content[i+1]
		switch key {
		case "kernel":
			if err := set(mapValue(val, "image")); err != nil {
				return nil, err
			}
		case "init":
			for _, n := range val.Content {
				if err := set(n); err != nil {
					return nil, err
				}
			}
		case "onboot", "onshutdown", "services", "volumes":
			for _, n := range val.Content {
				if err := set(mapValue(n, "image")); err != nil {
					return nil, err
				}
			}
		case "files":
			files = val
		}
	}
	if files == nil {
		files = &yaml.Node{Kind: yaml.SequenceNode}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "files"}, files)
	}
	if files.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("files is not a list")
	}
	scalar := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	files.Content = append(files.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		scalar("path"), scalar(stampPath),
		scalar("source"), scalar(stampSource),
		scalar("mode"), {Kind: yaml.ScalarNode, Value: "0644", Style: yaml.DoubleQuotedStyle},
	}})
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// mapValue returns the value of key in the mapping m (nil if none).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
