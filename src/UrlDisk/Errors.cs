namespace UrlDisk;

/// <summary>Base of every error UrlDisk reports to users. Messages never contain credentials.</summary>
public class UrlDiskException : Exception
{
    /// <summary>An error with a message for users.</summary>
    public UrlDiskException(string message) : base(message) { }
    /// <summary>An error with a message for users and the exception that caused it.</summary>
    public UrlDiskException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>A bad option or spec: names the option and what is allowed.</summary>
public sealed class OptionException(string message) : UrlDiskException(message);

/// <summary>A server refused, failed or answered wrongly.</summary>
public class SourceException(string message, Exception? inner = null) : UrlDiskException(message, inner)
{
    /// <summary>True when trying again may succeed (reset, timeout, 5xx).</summary>
    public bool IsTransient { get; init; }
}

/// <summary>The remote file is not the one opened: its validator, size or content changed.</summary>
public sealed class RemoteFileChangedException(string message) : SourceException(message);

/// <summary>The image file is malformed: names the structure and offset.</summary>
public sealed class ImageFormatException(string message) : UrlDiskException(message);

/// <summary>A write, write-zeroes or trim on a device opened read-only; names the driver.</summary>
public sealed class ReadOnlyDeviceException(string driver) : UrlDiskException($"{driver}: the device is read-only");
