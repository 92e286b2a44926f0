using System.Text;

namespace UrlDisk.Cli.Fuse;

/// <summary>One line of /proc/self/mountinfo: where something is mounted and what it is.</summary>
/// <param name="Device">major:minor; a FUSE mount's minor is its connection number (/sys/class/bdi/0:N).</param>
internal sealed record MountEntry(string MountPoint, string FileSystemType, string Source, string Device);

/// <summary>Reads /proc/self/mountinfo (proc(5)): is a path a mount point, and of what.</summary>
internal static class MountTable
{
    public const string FileSystemType = "fuse.urldisk";

    public static MountEntry? Find(string fullPath)
    {
        MountEntry? found = null;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            if (TryParse(line, out var entry) && entry.MountPoint == fullPath)
            {
                found = entry; // the last one is on top
            }
        }

        return found;
    }

    /// <summary>Fields: id parent major:minor root mountpoint options [optional…] - type source superoptions.</summary>
    public static bool TryParse(string line, out MountEntry entry)
    {
        entry = null!;
        string[] fields = line.Split(' ');
        int dash = Array.IndexOf(fields, "-", 6);
        if (fields.Length < 7 || dash < 0 || dash + 2 >= fields.Length)
        {
            return false;
        }

        entry = new MountEntry(Unescape(fields[4]), fields[dash + 1], Unescape(fields[dash + 2]), fields[2]);
        return true;
    }

    /// <summary>The kernel writes space, tab, newline and backslash as \ooo octal escapes.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add((byte)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(string s, int at)
        => at + 2 < s.Length && s[at] is >= '0' and <= '3' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
