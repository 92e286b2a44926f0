using System.Runtime.InteropServices;
using SharpFuzz.Common;

namespace UrlDisk.Fuzz;

/// <summary>
/// Edge coverage from an assembly instrumented by SharpFuzz (the AFL scheme: a 64 KiB map of hit counters that the
/// instrumented code increments). Counts are bucketed as AFL does; an input that sets a (edge, bucket) pair never
/// seen before reached new code.
/// </summary>
public sealed unsafe class CoverageMap
{
    private const int MapSize = 1 << 16;

    private readonly byte* _map;
    private readonly byte[] _seen = new byte[MapSize];

    private CoverageMap()
    {
        _map = (byte*)NativeMemory.AllocZeroed(MapSize);
        Trace.SharedMem = _map;
    }

    /// <summary>The map when UrlDisk.dll in this process is instrumented; null otherwise.</summary>
    public static CoverageMap? TryAttach()
    {
        var map = new CoverageMap();
        map.Reset();
        // Parsing a size runs instrumented branches if the library is instrumented.
        Specs.SizeParser.TryParse("1k", out _);
        if (map.Edges() > 0)
        {
            return map;
        }

        Trace.SharedMem = null;
        NativeMemory.Free(map._map);
        return null;
    }

    public void Reset()
    {
        new Span<byte>(_map, MapSize).Clear();
        Trace.PrevLocation = 0;
    }

    /// <summary>Records this input's coverage; true when it holds an edge or hit-count bucket not seen before.</summary>
    public bool Record()
    {
        var map = new ReadOnlySpan<byte>(_map, MapSize);
        bool isNew = false;
        for (int i = map.IndexOfAnyExcept((byte)0); i >= 0 && i < MapSize; i++)
        {
            byte count = map[i];
            if (count == 0)
            {
                continue;
            }

            byte bucket = Bucket(count);
            if ((_seen[i] & bucket) == 0)
            {
                _seen[i] |= bucket;
                isNew = true;
            }
        }

        return isNew;
    }

    /// <summary>Edges seen so far, over every input.</summary>
    public int Covered()
    {
        int n = 0;
        foreach (byte b in _seen)
        {
            n += b == 0 ? 0 : 1;
        }

        return n;
    }

    private int Edges()
    {
        var map = new ReadOnlySpan<byte>(_map, MapSize);
        int n = 0;
        foreach (byte b in map)
        {
            n += b == 0 ? 0 : 1;
        }

        return n;
    }

    private static byte Bucket(byte count) => count switch
    {
        1 => 1,
        2 => 2,
        3 => 4,
        < 8 => 8,
        < 16 => 16,
        < 32 => 32,
        < 128 => 64,
        _ => 128,
    };
}
