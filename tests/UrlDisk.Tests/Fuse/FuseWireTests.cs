using System.Buffers.Binary;
using UrlDisk.Fuse.Wire;

namespace UrlDisk.Tests.Fuse;

/// <summary>The FUSE struct codecs against the layouts of include/uapi/linux/fuse.h.</summary>
public class FuseWireTests
{
    [Fact]
    public void In_header_is_read_and_a_short_or_overlong_request_is_refused()
    {
        var request = new byte[48];
        BinaryPrimitives.WriteUInt32LittleEndian(request, 48);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 15);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(8), 0x1234);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(16), 2);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(24), 1000);
        Assert.True(FuseInHeader.TryRead(request, out var header));
        Assert.Equal(new FuseInHeader(48, FuseOpcode.Read, 0x1234, 2, 1000, 0, 0, 0), header);

        Assert.False(FuseInHeader.TryRead(request.AsSpan(0, 39), out _));
        BinaryPrimitives.WriteUInt32LittleEndian(request, 49); // claims more than was read
        Assert.False(FuseInHeader.TryRead(request, out _));
        BinaryPrimitives.WriteUInt32LittleEndian(request, 12); // shorter than a header
        Assert.False(FuseInHeader.TryRead(request, out _));
    }

    [Fact]
    public void Out_header_negates_the_errno_and_refuses_values_the_kernel_would_reject()
    {
        var reply = new byte[16];
        Assert.True(FuseOutHeader.TryWrite(reply, 16, Errno.EROFS, 42));
        Assert.Equal(16, BinaryPrimitives.ReadInt32LittleEndian(reply));
        Assert.Equal(-30, BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4)));
        Assert.Equal(42UL, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(8)));
        Assert.False(FuseOutHeader.TryWrite(reply, 16, 1000, 42));
        Assert.False(FuseOutHeader.TryWrite(reply, 16, -1, 42));
        Assert.False(FuseOutHeader.TryWrite(reply.AsSpan(0, 15), 16, 0, 42));
    }

    [Fact]
    public void Init_out_is_64_bytes_with_each_field_in_its_place()
    {
        var body = new byte[80];
        body.AsSpan().Fill(0xff);
        var init = new FuseInitOut(7, 31, 131072, FuseInitFlags.AsyncRead | FuseInitFlags.MaxPages, 64, 48, 1 << 20, 256);
        Assert.True(init.TryWrite(body));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(body));
        Assert.Equal(31u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)));
        Assert.Equal(131072u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(8)));
        Assert.Equal(0x400001u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(12)));
        Assert.Equal(64, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(16)));
        Assert.Equal(48, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(18)));
        Assert.Equal(1u << 20, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(20)));
        Assert.Equal(256, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(28)));
        Assert.True(body.AsSpan(30, 34).IndexOfAnyExcept((byte)0) < 0, "flags2 and the unused tail are zero");
        Assert.Equal(0xff, body[64]); // nothing past the 64 bytes
        Assert.False(init.TryWrite(new byte[63]));
    }

    [Fact]
    public void Init_in_read_and_a_short_one_refused()
    {
        var body = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(body, 7);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), 45);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), 131072);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), 0x73fffffb);
        Assert.True(FuseInitIn.TryRead(body, out var init));
        Assert.Equal(new FuseInitIn(7, 45, 131072, (FuseInitFlags)0x73fffffb), init);
        Assert.False(FuseInitIn.TryRead(body.AsSpan(0, 15), out _));
    }

    [Fact]
    public void Attr_out_and_entry_out_place_the_attributes_after_their_validity()
    {
        var attr = new FuseAttr(2, 1000, 1_700_000_000, 0x8000 | 0b110_100_100, 1000, 100);
        var attrOut = new byte[FuseReplies.AttrOutSize];
        Assert.True(FuseReplies.TryWriteAttrOut(attrOut, 3600, attr));
        Assert.Equal(3600UL, BinaryPrimitives.ReadUInt64LittleEndian(attrOut));
        var a = attrOut.AsSpan(16);
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(a));
        Assert.Equal(1000L, BinaryPrimitives.ReadInt64LittleEndian(a[8..]));
        Assert.Equal(2L, BinaryPrimitives.ReadInt64LittleEndian(a[16..])); // 512-byte blocks, rounded up
        Assert.Equal(0x81a4u, BinaryPrimitives.ReadUInt32LittleEndian(a[60..]));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(a[64..]));
        Assert.Equal(1000u, BinaryPrimitives.ReadUInt32LittleEndian(a[68..]));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(a[80..]));

        var entry = new byte[FuseReplies.EntryOutSize];
        Assert.True(FuseReplies.TryWriteEntryOut(entry, 2, 60, attr));
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(entry));
        Assert.Equal(60UL, BinaryPrimitives.ReadUInt64LittleEndian(entry.AsSpan(16)));
        Assert.Equal(60UL, BinaryPrimitives.ReadUInt64LittleEndian(entry.AsSpan(24)));
        Assert.Equal(1000L, BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(48)));
        Assert.False(FuseReplies.TryWriteEntryOut(entry.AsSpan(0, 127), 2, 60, attr));
    }

    [Fact]
    public void Dirent_is_padded_to_8_bytes_and_refused_when_it_does_not_fit()
    {
        var buffer = new byte[64];
        Assert.True(FuseReplies.TryWriteDirent(buffer, 2, 3, 8, "vm.raw"u8, out int written));
        Assert.Equal(32, written);
        Assert.Equal(6u, BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(16)));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(20)));
        Assert.Equal("vm.raw"u8.ToArray(), buffer.AsSpan(24, 6).ToArray());
        Assert.False(FuseReplies.TryWriteDirent(buffer.AsSpan(0, 31), 2, 3, 8, "vm.raw"u8, out written));
        Assert.Equal(0, written);
    }

    [Fact]
    public void Request_bodies_are_read_and_bad_ones_refused()
    {
        var read = new byte[40];
        BinaryPrimitives.WriteInt64LittleEndian(read.AsSpan(8), 4096);
        BinaryPrimitives.WriteUInt32LittleEndian(read.AsSpan(16), 131072);
        Assert.True(FuseIoIn.TryRead(read, out var io));
        Assert.Equal(new FuseIoIn(0, 4096, 131072), io);
        BinaryPrimitives.WriteInt64LittleEndian(read.AsSpan(8), -1);
        Assert.False(FuseIoIn.TryRead(read, out _));
        Assert.False(FuseIoIn.TryRead(read.AsSpan(0, 39), out _));

        var seek = new byte[24];
        BinaryPrimitives.WriteInt64LittleEndian(seek.AsSpan(8), 1 << 20);
        BinaryPrimitives.WriteInt32LittleEndian(seek.AsSpan(16), FuseLseekIn.SeekHole);
        Assert.True(FuseLseekIn.TryRead(seek, out var lseek));
        Assert.Equal(new FuseLseekIn(1 << 20, FuseLseekIn.SeekHole), lseek);

        var fallocate = new byte[32];
        BinaryPrimitives.WriteInt64LittleEndian(fallocate.AsSpan(8), 4096);
        BinaryPrimitives.WriteInt64LittleEndian(fallocate.AsSpan(16), 0);
        Assert.False(FuseFallocateIn.TryRead(fallocate, out _)); // an empty range
        BinaryPrimitives.WriteInt64LittleEndian(fallocate.AsSpan(16), 8192);
        BinaryPrimitives.WriteInt32LittleEndian(fallocate.AsSpan(24), FuseFallocateIn.KeepSize | FuseFallocateIn.PunchHole);
        Assert.True(FuseFallocateIn.TryRead(fallocate, out var range));
        Assert.Equal(new FuseFallocateIn(4096, 8192, 3), range);

        Assert.True(FuseOpenIn.TryRead([2, 0, 0, 0, 0, 0, 0, 0], out var open) && open.WantsWrite);
        Assert.True(FuseOpenIn.TryRead([0, 0x80, 0, 0, 0, 0, 0, 0], out open) && !open.WantsWrite);
        Assert.Equal("vm.raw"u8.ToArray(), FuseName.Read("vm.raw\0junk"u8).ToArray());
    }
}
