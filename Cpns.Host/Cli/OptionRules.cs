using System.CommandLine;
using System.CommandLine.Parsing;

namespace Cpns.Host.Cli;

/// <summary>Checks on options that run at parse time, before any work starts.</summary>
public static class OptionRules
{
    /// <summary>
    /// The value an option has in a command-level validator, its default included: there, <c>GetValue</c> of an option the
    /// user left out gives <c>default(T)</c>, not the option's default.
    /// </summary>
    public static T ValueOf<T>(this CommandResult result, Option<T> option) =>
        result.GetResult(option) is OptionResult given
            ? given.TryValue<T>(out var value) ? value : default!
            : option.HasDefaultValue ? (T)option.GetDefaultValue()! : default!;

    /// <summary>
    /// The option's value, or false when what the user wrote does not parse as one: the parser reports that itself, so a
    /// check of the value has nothing to add (and reading it would throw).
    /// </summary>
    public static bool TryValue<T>(this OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>Rejects a value below <paramref name="minimum"/> with a message naming the option.</summary>
    public static void AtLeast(Option<int> option, int minimum) =>
        option.Validators.Add(result =>
        {
            if (result.TryValue<int>(out var value) && value < minimum)
                result.AddError($"{option.Name} must be at least {minimum} (got {value})");
        });

    public static void Positive(Option<double> option) =>
        option.Validators.Add(result =>
        {
            if (result.TryValue<double>(out var value) && !(value > 0))
                result.AddError($"{option.Name} must be positive (got {value})");
        });

    /// <summary>An output file must be creatable: its folder exists and it is not itself a folder.</summary>
    public static void WritableFile(Option<FileInfo?> option) =>
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<FileInfo?>() is not { } file)
                return;
            if (Directory.Exists(file.FullName))
                result.AddError($"{option.Name} {file.FullName} is a folder, not a file");
            else if (file.Directory is { Exists: false } folder)
                result.AddError($"{option.Name} {file.FullName}: the folder {folder.FullName} does not exist");
        });

    /// <summary>An input file must exist.</summary>
    public static void ExistingFile(Option<FileInfo?> option) =>
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<FileInfo?>() is { Exists: false } file)
                result.AddError($"{option.Name} {file.FullName} does not exist");
        });
}
