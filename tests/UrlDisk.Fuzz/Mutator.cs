using System.Buffers.Binary;

namespace UrlDisk.Fuzz;

/// <summary>
/// Deterministic byte-level mutations in the manner of libFuzzer and AFL: bit flips, interesting integers
/// (big-endian, as every format here is), inserts, deletes, duplicated chunks and splices with other corpus entries.
/// </summary>
public sealed class Mutator(int seed)
{
    private const int MaxLength = 1 << 20;

    private static readonly long[] s_interesting =
    [
        0, 1, -1, 2, 7, 8, 9, 16, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 4095, 4096, 65535, 65536,
        int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue, 1L << 62, 1L << 32, (1L << 32) + 1,
    ];

    private readonly Random _random = new(seed);

    public byte[] Mutate(byte[] input, IReadOnlyList<byte[]> corpus)
    {
        var data = new List<byte>(input);
        int count = 1 + _random.Next(_random.Next(2) == 0 ? 2 : 8);
        for (int i = 0; i < count; i++)
        {
            MutateOnce(data, corpus);
        }

        if (data.Count > MaxLength)
        {
            data.RemoveRange(MaxLength, data.Count - MaxLength);
        }

        return [.. data];
    }

    private void MutateOnce(List<byte> data, IReadOnlyList<byte[]> corpus)
    {
        switch (data.Count == 0 ? 4 : _random.Next(10))
        {
            case 0:
                int bit = _random.Next(data.Count * 8);
                data[bit / 8] ^= (byte)(1 << (bit % 8));
                break;
            case 1:
                data[_random.Next(data.Count)] = (byte)_random.Next(256);
                break;
            case 2:
            case 3:
                OverwriteInteger(data);
                break;
            case 4:
                int at = _random.Next(data.Count + 1);
                int n = 1 + _random.Next(16);
                var bytes = new byte[n];
                _random.NextBytes(bytes);
                data.InsertRange(at, bytes);
                break;
            case 5:
                int start = _random.Next(data.Count);
                data.RemoveRange(start, Math.Min(data.Count - start, 1 + _random.Next(64)));
                break;
            case 6:
                int from = _random.Next(data.Count);
                int length = Math.Min(data.Count - from, 1 + _random.Next(256));
                data.InsertRange(_random.Next(data.Count + 1), data.GetRange(from, length));
                break;
            case 7:
                if (corpus.Count > 0)
                {
                    var other = corpus[_random.Next(corpus.Count)];
                    int cut = _random.Next(data.Count + 1);
                    int otherCut = other.Length == 0 ? 0 : _random.Next(other.Length);
                    data.RemoveRange(cut, data.Count - cut);
                    data.AddRange(other.AsSpan(otherCut).ToArray());
                }

                break;
            case 8:
                data.RemoveRange(_random.Next(data.Count), 1);
                break;
            default:
                // Copy a chunk over another place: table entries pointing at each other.
                int src = _random.Next(data.Count);
                int dst = _random.Next(data.Count);
                int len = Math.Min(Math.Min(data.Count - src, data.Count - dst), 1 + _random.Next(32));
                var chunk = data.GetRange(src, len);
                for (int i = 0; i < len; i++)
                {
                    data[dst + i] = chunk[i];
                }

                break;
        }
    }

    private void OverwriteInteger(List<byte> data)
    {
        int width = (1 << _random.Next(4)) switch { 1 => 1, 2 => 2, 4 => 4, _ => 8 };
        if (data.Count < width)
        {
            return;
        }

        long value = _random.Next(4) == 0 ? data.Count + _random.Next(-8, 9) : s_interesting[_random.Next(s_interesting.Length)];
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        int at = _random.Next(data.Count - width + 1);
        // Aligned positions hit structure fields more often.
        if (_random.Next(2) == 0)
        {
            at -= at % width;
        }

        for (int i = 0; i < width; i++)
        {
            data[at + i] = bytes[8 - width + i];
        }
    }
}
