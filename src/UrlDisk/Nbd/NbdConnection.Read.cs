using System.Buffers;
using UrlDisk.Nbd.Wire;
using UrlDisk.Specs;

namespace UrlDisk.Nbd;

/// <summary>READ (simple, or structured with holes skipped) and BLOCK_STATUS, both driven by the device's extents.</summary>
internal sealed partial class NbdConnection
{
    /// <summary>Most descriptors in one BLOCK_STATUS reply; the client asks again from where the reply stopped.</summary>
    private const int MaxDescriptors = 64 * 1024;

    /// <summary>
    /// Reads shorter than this are sent as data without asking the device for its extents: a hole that small saves
    /// almost nothing on the wire, and the lookup (a second walk of qcow2's tables, two lseeks on a file) costs more.
    /// </summary>
    private const int SparseReadMinimum = 64 * 1024;

    /// <summary>A piece of a READ reply: data to send, or a range known to read as zeros.</summary>
    private readonly record struct ReadPiece(long Offset, long Length, bool Zero);

    /// <summary>Reads, then replies with one message: header and data in one send, or with holes as OFFSET_HOLE chunks.</summary>
    private async ValueTask<bool> ReadAsync(NbdRequest r, long amount, CancellationToken ct)
    {
        long offset = (long)r.Offset;
        int length = (int)r.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        List<ReadPiece> pieces;
        try
        {
            pieces = await PlanReadAsync(offset, length, dontFragment: (r.Flags & NbdCommandFlags.DontFragment) != 0, ct).ConfigureAwait(false);
            foreach (var p in pieces)
            {
                if (!p.Zero)
                {
                    await _export.Device.ReadAsync(p.Offset, buffer.AsMemory((int)(p.Offset - offset), (int)p.Length), ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ReplyError(r, e, amount);
            return true;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        if (!_structuredReplies)
        {
            var header = new byte[SimpleReplyHeader.Size];
            new SimpleReplyHeader(NbdError.None, r.Cookie).Write(header);
            Reply([header, new ArraySegment<byte>(buffer, 0, length)], buffer, amount);
            return true;
        }

        if (pieces.Count == 0)
        {
            var none = new byte[StructuredReplyHeader.Size];
            new StructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.None, r.Cookie, 0).Write(none);
            Reply([none], buffer, amount);
            return true;
        }

        // Everything was read before the first chunk goes out, so no error can follow a chunk marked done.
        var segments = new ArraySegment<byte>[pieces.Count * 2];
        int n = 0;
        for (int i = 0; i < pieces.Count; i++)
        {
            var p = pieces[i];
            var flags = i == pieces.Count - 1 ? NbdReplyFlags.Done : NbdReplyFlags.None;
            if (p.Zero)
            {
                var hole = new byte[StructuredReplyHeader.Size + OffsetHoleChunk.Size];
                new StructuredReplyHeader(flags, NbdReplyChunkType.OffsetHole, r.Cookie, OffsetHoleChunk.Size).Write(hole);
                new OffsetHoleChunk((ulong)p.Offset, (uint)p.Length).Write(hole.AsSpan(StructuredReplyHeader.Size));
                segments[n++] = hole;
            }
            else
            {
                var bytes = new byte[StructuredReplyHeader.Size + OffsetDataChunk.Size];
                new StructuredReplyHeader(flags, NbdReplyChunkType.OffsetData, r.Cookie, (uint)(OffsetDataChunk.Size + p.Length)).Write(bytes);
                new OffsetDataChunk((ulong)p.Offset).Write(bytes.AsSpan(StructuredReplyHeader.Size));
                segments[n++] = bytes;
                segments[n++] = new ArraySegment<byte>(buffer, (int)(p.Offset - offset), (int)p.Length);
            }
        }

        Reply(segments[..n], buffer, amount);
        return true;
    }

    /// <summary>
    /// Splits a read into data and zero pieces from the device's extents (only with structured replies, only when
    /// the device knows its allocation, never with DF, never for small reads). Adjacent pieces of the same kind are merged.
    /// </summary>
    private async ValueTask<List<ReadPiece>> PlanReadAsync(long offset, int length, bool dontFragment, CancellationToken ct)
    {
        var pieces = new List<ReadPiece>();
        if (length == 0)
        {
            return pieces;
        }

        if (!_structuredReplies || dontFragment || length < SparseReadMinimum || !_export.Device.Info.ReportsAllocation)
        {
            pieces.Add(new ReadPiece(offset, length, Zero: false));
            return pieces;
        }

        long end = offset + length;
        long at = offset;
        foreach (var e in await _export.Device.GetExtentsAsync(offset, length, ct).ConfigureAwait(false))
        {
            long s = Math.Max(e.Offset, at);
            long t = Math.Min(e.End, end);
            if (t <= s || s != at)
            {
                // Extents must be contiguous; anything else is treated as data from here on.
                if (s != at)
                {
                    break;
                }

                continue;
            }

            Add(pieces, new ReadPiece(s, t - s, e.IsZero));
            at = t;
        }

        if (at < end)
        {
            Add(pieces, new ReadPiece(at, end - at, Zero: false));
        }

        return pieces;

        static void Add(List<ReadPiece> list, ReadPiece p)
        {
            if (list.Count > 0 && list[^1].Zero == p.Zero)
            {
                list[^1] = list[^1] with { Length = list[^1].Length + p.Length };
            }
            else
            {
                list.Add(p);
            }
        }
    }

    private async ValueTask<bool> BlockStatusAsync(NbdRequest r, long amount, CancellationToken ct)
    {
        long offset = (long)r.Offset;
        long length = (long)r.Length;
        var extents = new List<Extent>();
        try
        {
            long at = offset;
            foreach (var e in await _export.Device.GetExtentsAsync(offset, length, ct).ConfigureAwait(false))
            {
                long s = Math.Max(e.Offset, at);
                long t = Math.Min(e.End, offset + length);
                if (s != at || t <= s)
                {
                    if (s != at)
                    {
                        break;
                    }

                    continue;
                }

                extents.Add(e with { Offset = s, Length = t - s });
                at = t;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            ReplyError(r, e, amount);
            return true;
        }

        // One chunk per selected context, the last one marked done.
        var chunks = new List<ArraySegment<byte>>();
        if (_baseAllocation)
        {
            chunks.Add(BlockStatusChunk(r, BaseAllocationContextId, extents, length,
                e => (uint)((e.IsHole ? NbdAllocationState.Hole : 0) | (e.IsZero ? NbdAllocationState.Zero : 0)), done: !_allocationDepth));
        }

        if (_allocationDepth)
        {
            // A hole in a raw file is still "allocated" to QEMU (the file is that layer): only a chain whose bottom is a
            // format with its own allocation has unallocated ranges.
            bool holesAllocated = Options.ChainEndsInRawFile;
            chunks.Add(BlockStatusChunk(r, AllocationDepthContextId, extents, length,
                e => e.IsHole && !holesAllocated ? 0u : (uint)e.Depth + 1, done: true));
        }

        Reply([.. chunks], null, amount);
        return true;
    }

    private static ArraySegment<byte> BlockStatusChunk(in NbdRequest r, uint contextId, List<Extent> extents, long length, Func<Extent, uint> stateOf, bool done)
    {
        var descriptors = new List<BlockStatusDescriptor>();
        foreach (var e in extents)
        {
            var state = (NbdAllocationState)stateOf(e);
            if (descriptors.Count > 0 && descriptors[^1].State == state && descriptors[^1].Length + (ulong)e.Length <= uint.MaxValue)
            {
                descriptors[^1] = descriptors[^1] with { Length = descriptors[^1].Length + (uint)e.Length };
            }
            else if (descriptors.Count < MaxDescriptors)
            {
                descriptors.Add(new BlockStatusDescriptor((uint)e.Length, state));
            }
            else
            {
                break;
            }
        }

        if (descriptors.Count == 0)
        {
            // At least one descriptor must come back; status 0 ("allocated, maybe not zero") is always safe.
            descriptors.Add(new BlockStatusDescriptor((uint)length, NbdAllocationState.Data));
        }

        if ((r.Flags & NbdCommandFlags.ReqOne) != 0 && descriptors.Count > 1)
        {
            descriptors.RemoveRange(1, descriptors.Count - 1);
        }

        int payloadLength = BlockStatusDescriptor.ContextIdSize + (descriptors.Count * BlockStatusDescriptor.Size);
        var bytes = new byte[StructuredReplyHeader.Size + payloadLength];
        new StructuredReplyHeader(done ? NbdReplyFlags.Done : NbdReplyFlags.None, NbdReplyChunkType.BlockStatus, r.Cookie, (uint)payloadLength).Write(bytes);
        var payload = bytes.AsSpan(StructuredReplyHeader.Size);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(payload, contextId);
        for (int i = 0; i < descriptors.Count; i++)
        {
            descriptors[i].Write(payload[(BlockStatusDescriptor.ContextIdSize + (i * BlockStatusDescriptor.Size))..]);
        }

        return bytes;
    }
}
