namespace UrlDisk.Nbd.Wire;

/// <summary>The peer sent bytes that are not NBD (bad magic, impossible lengths): the connection cannot go on.</summary>
internal sealed class NbdProtocolException(string message) : IOException(message);
