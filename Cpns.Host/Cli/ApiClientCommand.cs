using System.CommandLine;
using Cpns.Host.Api;
using Spectre.Console;

namespace Cpns.Host.Cli;

/// <summary>
/// <c>cpns api-client</c>: the clients of a server node's HTTP API — Application/Content Entities (role ace) and operators
/// (role operator). A key is shown once, when it is made; the node keeps only its hash.
/// </summary>
public static class ApiClientCommand
{
    public static Command Create()
    {
        var command = new Command("api-client",
            "Add, list or remove the clients of a server node's HTTP API (`cpns server --http`): ACEs and operators");
        command.Add(Add());
        command.Add(List());
        command.Add(Remove());
        return command;
    }

    private static ApiClientStore Store(ParseResult parse, Option<string> data) =>
        new(Path.Combine(Path.GetFullPath(parse.GetValue(data)!), ApiClientStore.FileName));

    private static Option<string> IdOption(string description)
    {
        var id = new Option<string>("--id") { Description = description, Required = true };
        id.Validators.Add(result =>
        {
            if (!ApiClientStore.IsValidId(result.GetValueOrDefault<string>()))
                result.AddError($"--id '{result.GetValueOrDefault<string>()}' is not a client id (1 to 64 letters, digits, '-' or '.')");
        });
        return id;
    }

    private static Command Add()
    {
        var data = new CommonOptions().Data;
        var id = IdOption("The client's id; an ACE acts in the enabler as ace:<id>");
        var role = new Option<ApiRole>("--role") { Description = "ace (CPNS-5: services, content, own usage) or operator", Required = true };
        var command = new Command("add", "Add a client and print its API key (shown only now)") { data, id, role };
        command.SetAction(parse =>
        {
            var store = Store(parse, data);
            try
            {
                var (client, key) = store.Add(parse.GetValue(id)!, parse.GetValue(role));
                Console.Error.WriteLine($"added {client.Role.ToString().ToLowerInvariant()} client '{client.Id}' to {store.Path}; its key (shown only now):");
                Console.Out.WriteLine(key);
                return 0;
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine($"cpns api-client add: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    private static Command List()
    {
        var data = new CommonOptions().Data;
        var command = new Command("list", "List the clients (ids, roles, when added; never keys)") { data };
        command.SetAction(parse =>
        {
            var store = Store(parse, data);
            var table = new Table().Title($"API clients in {Markup.Escape(store.Path)}").AddColumn("id").AddColumn("role").AddColumn("added");
            foreach (var client in store.List())
                table.AddRow(Markup.Escape(client.Id), client.Role.ToString().ToLowerInvariant(), client.CreatedAt.ToString("u"));
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Remove()
    {
        var data = new CommonOptions().Data;
        var id = IdOption("The client to remove; its key stops working at once");
        var command = new Command("remove", "Remove a client") { data, id };
        command.SetAction(parse =>
        {
            var store = Store(parse, data);
            if (store.Remove(parse.GetValue(id)!))
            {
                Console.Error.WriteLine($"removed client '{parse.GetValue(id)}' from {store.Path}");
                return 0;
            }

            Console.Error.WriteLine($"cpns api-client remove: no client '{parse.GetValue(id)}' in {store.Path}");
            return 2;
        });
        return command;
    }
}
