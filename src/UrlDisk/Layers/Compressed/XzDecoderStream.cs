using System.Runtime.InteropServices;

namespace UrlDisk.Layers.Compressed;

/// <summary>
/// A forward-only stream of the decoded contents of a whole .xz file (every stream, concatenated), through
/// liblzma's stream decoder with a memory limit. For files whose blocks are too few or too large for random access.
/// </summary>
internal sealed class XzDecoderStream : Stream
{
    private const int InputSize = 256 * 1024;
    private const ulong MemoryLimit = 1UL << 30;

    private readonly Stream _input;
    private readonly nint _stream;
    private readonly nint _inBuffer;
    private bool _inputDone;
    private bool _end;

    public unsafe XzDecoderStream(Stream input)
    {
        _input = input;
        _stream = (nint)NativeMemory.AllocZeroed((nuint)sizeof(LibLzma.Stream));
        _inBuffer = (nint)NativeMemory.Alloc(InputSize);
        int r = LibLzma.StreamDecoder(S, MemoryLimit, LibLzma.Concatenated);
        if (r != LibLzma.Ok)
        {
            Free();
            throw new UrlDiskException($"xz: cannot start the decoder: {LibLzma.Describe(r)}");
        }
    }

    private unsafe LibLzma.Stream* S => (LibLzma.Stream*)_stream;

    private unsafe bool NeedsInput => S->AvailIn == 0;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!_end && buffer.Length > 0)
        {
            if (NeedsInput && !_inputDone)
            {
                var chunk = new byte[InputSize];
                int n = await _input.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    _inputDone = true;
                }
                else
                {
                    SetInput(chunk.AsSpan(0, n));
                }
            }

            int produced = Decode(buffer.Span);
            if (produced > 0)
            {
                return produced;
            }
        }

        return 0;
    }

    private unsafe void SetInput(ReadOnlySpan<byte> chunk)
    {
        chunk.CopyTo(new Span<byte>((void*)_inBuffer, chunk.Length));
        S->NextIn = (byte*)_inBuffer;
        S->AvailIn = (nuint)chunk.Length;
    }

    private unsafe int Decode(Span<byte> output)
    {
        var st = S;
        fixed (byte* o = output)
        {
            st->NextOut = o;
            st->AvailOut = (nuint)output.Length;
            int r = LibLzma.Code(st, _inputDone ? LibLzma.Finish : LibLzma.Run);
            int produced = output.Length - (int)st->AvailOut;
            st->NextOut = null;
            if (r == LibLzma.StreamEnd)
            {
                _end = true;
            }
            else if (r != LibLzma.Ok)
            {
                throw new ImageFormatException($"xz: at compressed offset {st->TotalIn}: {LibLzma.Describe(r)}");
            }
            else if (_inputDone && produced == 0)
            {
                throw new ImageFormatException($"xz: the file ends inside a stream, after {st->TotalIn} bytes");
            }

            return produced;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("xz: read asynchronously");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private unsafe void Free()
    {
        LibLzma.End(S);
        NativeMemory.Free((void*)_stream);
        NativeMemory.Free((void*)_inBuffer);
    }

    protected override void Dispose(bool disposing)
    {
        Free();
        base.Dispose(disposing);
    }
}
