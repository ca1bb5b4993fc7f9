using System.IO.Pipelines;
using FtpCluster.Grains.Hosting.Transport;

namespace FtpCluster.Grains.Tests.Transport;

/// <summary>How the output pipe's writer learns a connection's large message size, and forgets it.</summary>
public sealed class MessageSizedPipeWriterTests
{
    private const int Segment = 64 << 10;
    private const int Largest = 32 << 20;

    private long _now = 1_000_000;

    private MessageSizedPipeWriter Writer() => new(new Pipe().Writer, Segment, Largest, () => _now);

    [Fact]
    public void Small_requests_and_writes_teach_nothing()
    {
        var writer = Writer();

        writer.Advance(0);
        Assert.Equal(4104, writer.BufferSizeFor(4104));
        Assert.Equal(Segment, writer.BufferSizeFor(Segment));
        Assert.Equal(0, writer.LearnedBytes);
    }

    [Fact]
    public void After_a_large_request_every_request_gets_room_for_such_a_message()
    {
        var writer = Writer();

        // Orleans' second request for a message that did not fit: the rest of it, contiguous (with room, as every request from now on).
        Assert.Equal((8 << 20) + Segment, writer.BufferSizeFor(8 << 20));

        // The next message starts with Orleans' usual 4 KiB request.
        Assert.Equal((8 << 20) + Segment, writer.BufferSizeFor(4104));
        Assert.Equal(8 << 20, writer.LearnedBytes);
    }

    [Fact]
    public void A_large_write_teaches_as_a_large_request_does()
    {
        var writer = Writer();
        writer.GetSpan((1 << 20) + 100);

        writer.Advance((1 << 20) + 100);

        Assert.Equal((1 << 20) + 100 + Segment, writer.BufferSizeFor(4104));
    }

    [Fact]
    public void A_learned_size_is_forgotten_without_messages_of_at_least_half_of_it()
    {
        var writer = Writer();
        writer.BufferSizeFor(8 << 20);

        _now += 9_000;
        writer.BufferSizeFor(2 << 20); // a quarter of the learned size: does not keep it
        Assert.Equal((8 << 20) + Segment, writer.BufferSizeFor(4104));
        _now += 2_000;
        Assert.Equal(4104, writer.BufferSizeFor(4104));
        Assert.Equal(0, writer.LearnedBytes);
    }

    [Fact]
    public void Messages_of_at_least_half_the_learned_size_keep_it()
    {
        var writer = Writer();
        writer.BufferSizeFor(8 << 20);

        for (int i = 0; i < 5; i++)
        {
            _now += 9_000;
            writer.BufferSizeFor(4 << 20);
        }

        Assert.Equal(8 << 20, writer.LearnedBytes);
    }

    [Fact]
    public void Sizes_are_learned_up_to_the_largest()
    {
        var writer = Writer();

        writer.BufferSizeFor(100 << 20);

        Assert.Equal(Largest, writer.LearnedBytes);
        Assert.Equal(Largest + Segment, writer.BufferSizeFor(4104));
    }

    [Fact]
    public async Task A_message_written_after_a_large_one_lands_in_one_buffer_that_holds_it()
    {
        var pipe = new Pipe(new PipeOptions(pool: null, minimumSegmentSize: Segment, pauseWriterThreshold: 0, resumeWriterThreshold: 0));
        var writer = new MessageSizedPipeWriter(pipe.Writer, Segment, Largest, () => _now);
        writer.GetSpan(3 << 20);
        writer.Advance(3 << 20);
        await writer.FlushAsync();
        var sent = await pipe.Reader.ReadAsync();
        pipe.Reader.AdvanceTo(sent.Buffer.End);

        var next = writer.GetMemory(4104);

        Assert.True(next.Length >= (3 << 20) + Segment, $"{next.Length} bytes for the next message");
    }
}
