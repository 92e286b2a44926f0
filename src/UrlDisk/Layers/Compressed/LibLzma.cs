using System.Runtime.InteropServices;

namespace UrlDisk.Layers.Compressed;

/// <summary>
/// The few liblzma (xz-utils, Debian's liblzma5) entry points used: one-shot raw decoding of a block's filter chain,
/// and the streaming .xz decoder for files that hold one big block. Containers are parsed in C# (XzIndex).
/// </summary>
internal static unsafe partial class LibLzma
{
    private const string Library = "liblzma.so.5";

    public const ulong VliUnknown = ulong.MaxValue;
    public const int Ok = 0;
    public const int StreamEnd = 1;
    public const int Run = 0;
    public const int Finish = 3;
    public const uint Concatenated = 0x08;

    [StructLayout(LayoutKind.Sequential)]
    public struct Filter
    {
        public ulong Id;
        public void* Options;
    }

    /// <summary>liblzma 5.x's lzma_stream: buffers, totals, then fields reserved for later versions.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Stream
    {
        public byte* NextIn;
        public nuint AvailIn;
        public ulong TotalIn;
        public byte* NextOut;
        public nuint AvailOut;
        public ulong TotalOut;
        public void* Allocator;
        public void* Internal;
        public void* Reserved1;
        public void* Reserved2;
        public void* Reserved3;
        public void* Reserved4;
        public ulong SeekPos;
        public ulong ReservedInt2;
        public nuint ReservedInt3;
        public nuint ReservedInt4;
        public int ReservedEnum1;
        public int ReservedEnum2;
    }

    [LibraryImport(Library, EntryPoint = "lzma_properties_decode")]
    public static partial int PropertiesDecode(Filter* filter, void* allocator, byte* props, nuint propsSize);

    [LibraryImport(Library, EntryPoint = "lzma_raw_buffer_decode")]
    public static partial int RawBufferDecode(Filter* filters, void* allocator, byte* input, nuint* inPos, nuint inSize, byte* output, nuint* outPos, nuint outSize);

    [LibraryImport(Library, EntryPoint = "lzma_stream_decoder")]
    public static partial int StreamDecoder(Stream* stream, ulong memlimit, uint flags);

    [LibraryImport(Library, EntryPoint = "lzma_code")]
    public static partial int Code(Stream* stream, int action);

    [LibraryImport(Library, EntryPoint = "lzma_end")]
    public static partial void End(Stream* stream);

    public static string Describe(int ret) => ret switch
    {
        5 => "out of memory",
        6 => "the dictionary needs more memory than allowed",
        7 => "not an xz stream",
        8 => "unsupported filter options",
        9 => "corrupt compressed data",
        10 => "truncated compressed data",
        _ => $"liblzma error {ret}",
    };

    /// <summary>
    /// Decodes one block's compressed data with its filter chain into <paramref name="output"/>, which must be
    /// filled exactly. The LZMA2 dictionary is capped at the output size: distances never reach further back
    /// than the data decoded so far, and a hostile header then cannot make liblzma reserve gigabytes.
    /// </summary>
    public static void DecodeBlock(IReadOnlyList<XzFilter> filters, ReadOnlySpan<byte> input, Span<byte> output, string where)
    {
        var chain = stackalloc Filter[filters.Count + 1];
        int decoded = 0;
        try
        {
            for (; decoded < filters.Count; decoded++)
            {
                chain[decoded].Id = filters[decoded].Id;
                chain[decoded].Options = null;
                fixed (byte* props = filters[decoded].Properties)
                {
                    int r = PropertiesDecode(&chain[decoded], null, props, (nuint)filters[decoded].Properties.Length);
                    if (r != Ok)
                    {
                        throw new ImageFormatException($"xz: {where}: filter 0x{filters[decoded].Id:x} has unsupported properties ({Describe(r)})");
                    }
                }

                if (filters[decoded].Id == XzBlockHeader.Lzma2 && chain[decoded].Options is not null)
                {
                    // lzma_options_lzma starts with uint32_t dict_size.
                    uint* dict = (uint*)chain[decoded].Options;
                    *dict = (uint)Math.Clamp(Math.Min(*dict, (long)output.Length), 4096, uint.MaxValue);
                }
            }

            chain[filters.Count].Id = VliUnknown;
            chain[filters.Count].Options = null;
            nuint inPos = 0;
            nuint outPos = 0;
            fixed (byte* i = input)
            fixed (byte* o = output)
            {
                int r = RawBufferDecode(chain, null, i, &inPos, (nuint)input.Length, o, &outPos, (nuint)output.Length);
                if (r != Ok || outPos != (nuint)output.Length || inPos != (nuint)input.Length)
                {
                    throw new ImageFormatException($"xz: {where}: {(r != Ok ? Describe(r) : $"decoded {outPos} of the {output.Length} bytes the index records from {inPos} of {input.Length} compressed bytes")}");
                }
            }
        }
        finally
        {
            for (int k = 0; k < decoded; k++)
            {
                NativeMemory.Free(chain[k].Options);
            }
        }
    }
}
