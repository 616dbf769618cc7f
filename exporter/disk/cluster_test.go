package disk

import "testing"

// TestClusterSize: the cluster sizes of mkfs.fat and Microsoft's format,
// at and just above each limit.
func TestClusterSize(t *testing.T) {
	for _, c := range []struct {
		fat16 bool
		size  int64
		want  int64
	}{
		{true, 8 << 20, 1 << 10}, {true, 32 << 20, 1 << 10}, {true, 32<<20 + 1, 2 << 10},
		{true, 128 << 20, 2 << 10}, {true, 128<<20 + 1, 4 << 10}, {true, 256 << 20, 4 << 10},
		{true, 256<<20 + 1, 8 << 10}, {true, 512 << 20, 8 << 10}, {true, 512<<20 + 1, 16 << 10},
		{true, 1 << 30, 16 << 10}, {true, 1<<30 + 1, 32 << 10}, {true, 2 << 30, 32 << 10},
		{false, 40 << 20, 512}, {false, 260 << 20, 512}, {false, 260<<20 + 1, 4 << 10},
		{false, 8 << 30, 4 << 10}, {false, 8<<30 + 1, 8 << 10}, {false, 16 << 30, 8 << 10},
		{false, 16<<30 + 1, 16 << 10}, {false, 32 << 30, 16 << 10}, {false, 32<<30 + 1, 32 << 10},
		{false, 2 << 40, 32 << 10},
	} {
		sizes := fat32ClusterSizes
		if c.fat16 {
			sizes = fat16ClusterSizes
		}
		if got := clusterSize(c.size, sizes); got != c.want {
			t.Errorf("FAT16 %v, %d bytes: clusters of %d, want %d", c.fat16, c.size, got, c.want)
		}
	}
}
